using System.Diagnostics;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Forecasting;

/// <summary>Errors of the price forecasts h = 1…H steps ahead, pooled over every origin and target column.</summary>
public sealed record ForecastErrors(double[] Rmse, double[] Mae, double[] Mape)
{
    public double MeanRmse => Rmse.Average();
    public double MeanMae => Mae.Average();
    public double MeanMape => Mape.Average();

    /// <summary>RMSE, MAE and MAPE (%) at each horizon of forecasts [origin][h][column] against the truth.</summary>
    public static ForecastErrors Of(IReadOnlyList<double[][]> forecasts, IReadOnlyList<double[][]> truth)
    {
        int horizon = truth[0].Length;
        var (rmse, mae, mape) = (new double[horizon], new double[horizon], new double[horizon]);
        for (int h = 0; h < horizon; h++)
        {
            double squares = 0, absolute = 0, relative = 0;
            long n = 0;
            for (int i = 0; i < truth.Count; i++)
                for (int c = 0; c < truth[i][h].Length; c++)
                {
                    double error = forecasts[i][h][c] - truth[i][h][c];
                    (squares, absolute, relative, n) = (squares + error * error, absolute + Math.Abs(error),
                        relative + Math.Abs(error) / Math.Abs(truth[i][h][c]), n + 1);
                }
            (rmse[h], mae[h], mape[h]) = (Math.Sqrt(squares / n), absolute / n, 100 * relative / n);
        }
        return new ForecastErrors(rmse, mae, mape);
    }
}

/// <summary>One forecaster's out-of-sample result: errors, and (models) training time, size and final losses per fold.</summary>
public sealed record ForecastResult(string Name, int? Seed, ForecastErrors Errors, long Parameters, double TrainSeconds,
    double[] FinalTrainLoss, double[][][] Forecasts);

/// <summary>
/// Walk-forward evaluation with no look-ahead (docs/forecasting.md). The last data.test_fraction of the series is cut into
/// data.folds segments; fold k trains a fresh model on everything before its segment and forecasts from every origin t
/// in it, reading only steps ≤ t. The model sees log returns r_t = ln y_t − ln y_{t−1} of the input columns, scaled by
/// the mean and standard deviation of the fold's training part only, and predicts the next H returns of the target
/// columns; prices follow as ŷ_{t+h} = y_t · exp(Σ_{j≤h} r̂_{t+j}). The baselines forecast from the same origins.
/// </summary>
public sealed class WalkForward
{
    readonly ForecastConfig _config;
    readonly SeriesData _inputs, _targets;
    readonly int[] _targetColumns;                                           // target columns' places among the inputs

    public WalkForward(ForecastConfig config, SeriesData series)
    {
        _config = config;
        var d = config.Data;
        _inputs = d.Columns.Length > 0 ? series.Select(d.Columns) : series;
        _targets = d.Targets.Length > 0 ? _inputs.Select(d.Targets) : _inputs;
        _targetColumns = [.. _targets.Columns.Select(c => Array.IndexOf(_inputs.Columns, c))];
        int minimum = d.Window + d.Horizon + 2;
        if (Splits[0] - d.Horizon - 1 < d.Window + 1)
            throw new MnemoException($"series {series.Name} ({series.Length} steps) is too short for window {d.Window}, horizon " +
                $"{d.Horizon} and test fraction {d.TestFraction}: the first fold needs at least {minimum} training steps");
        if (Enumerable.Range(0, d.Folds).FirstOrDefault(k => Origins(k).Length == 0, -1) is int empty and >= 0)
            throw new MnemoException($"fold {empty + 1} of {d.Folds} has no forecast origin: the test part of {series.Name} " +
                $"({series.Length} steps × test fraction {d.TestFraction}) is too short for {d.Folds} folds at horizon {d.Horizon}");
    }

    public SeriesData Inputs => _inputs;
    public SeriesData Targets => _targets;

    /// <summary>The first step of each fold's test segment, then the series' length.</summary>
    public int[] Splits
    {
        get
        {
            var d = _config.Data;
            int n = _inputs.Length, testStart = (int)Math.Round(n * (1 - d.TestFraction));
            return [.. Enumerable.Range(0, d.Folds + 1).Select(k => testStart + (int)((long)(n - testStart) * k / d.Folds))];
        }
    }

    /// <summary>The forecast origins of fold k: t in [split_k − 1, split_{k+1} − 1), every target t + h inside the series.</summary>
    public int[] Origins(int fold)
    {
        var s = Splits;
        int last = Math.Min(s[fold + 1] - 2, _inputs.Length - 1 - _config.Data.Horizon);
        return [.. Enumerable.Range(s[fold] - 1, Math.Max(0, last - s[fold] + 2))];
    }

    /// <summary>Every origin of every fold, in time order.</summary>
    public int[] AllOrigins => [.. Enumerable.Range(0, _config.Data.Folds).SelectMany(Origins)];

    /// <summary>The true target prices y_{t+1…t+H} at each origin [origin][h][column].</summary>
    public double[][][] Truth() => [.. AllOrigins.Select(t => Ahead(t, h => _targets.Rows[t + h]))];

    /// <summary>Persistence: ŷ_{t+h} = y_t.</summary>
    public double[][][] Persistence() => [.. AllOrigins.Select(t => Ahead(t, _ => _targets.Rows[t]))];

    /// <summary>Seasonal naive with season m: ŷ_{t+h} = y_{t+h−m⌈h/m⌉}, the latest observed step of the same phase.</summary>
    public double[][][] SeasonalNaive()
    {
        int m = _config.Data.Season;
        return [.. AllOrigins.Select(t => Ahead(t, h => _targets.Rows[Math.Max(0, t + h - m * ((h + m - 1) / m))]))];
    }

    /// <summary>
    /// Drift: ŷ_{t+h} = y_t · exp(h μ), μ the mean log return of the origin's fold's training part (a random walk with
    /// drift; what a forecaster that learned only the average trend would say).
    /// </summary>
    public double[][][] Drift()
    {
        var forecasts = new List<double[][]>();
        for (int fold = 0; fold < _config.Data.Folds; fold++)
        {
            int split = Splits[fold];
            var mean = _targetColumns.Select(c => Math.Log(_inputs.Rows[split - 1][c] / _inputs.Rows[0][c]) / (split - 1)).ToArray();
            forecasts.AddRange(Origins(fold).Select(t => Ahead(t, h => [.. _targets.Rows[t].Select((y, c) => y * Math.Exp(h * mean[c]))])));
        }
        return [.. forecasts];
    }

    double[][] Ahead(int origin, Func<int, double[]> at) =>
        [.. Enumerable.Range(1, _config.Data.Horizon).Select(h => (double[])at(h).Clone())];

    /// <summary>Trains a model of model.mixer on each fold (seeded by training.seed) and forecasts its origins.</summary>
    public ForecastResult RunModel(string name, Action<string>? log = null)
    {
        var (d, t) = (_config.Data, _config.Training);
        var forecasts = new List<double[][]>();
        var losses = new double[d.Folds];
        long parameters = 0;
        var clock = Stopwatch.StartNew();
        for (int fold = 0; fold < d.Folds; fold++)
        {
            var (loss, count, foldForecasts) = TrainFold(fold);
            (losses[fold], parameters) = (loss, count);
            forecasts.AddRange(foldForecasts);
            log?.Invoke($"{name} seed {t.Seed} fold {fold + 1}/{d.Folds}: final training loss {loss:F4}, {foldForecasts.Length} origins");
        }
        var errors = ForecastErrors.Of(forecasts, Truth());
        return new ForecastResult(name, t.Seed, errors, parameters, clock.Elapsed.TotalSeconds, losses, [.. forecasts]);
    }

    /// <summary>Scaled log returns [T, F] of the inputs (row 0 is 0), with the scale of steps 1 … end − 1 only.</summary>
    (float[] Returns, double[] Mean, double[] Std) ScaledReturns(int end)
    {
        int n = _inputs.Length, f = _inputs.Columns.Length;
        var raw = new double[n, f];
        for (int i = 1; i < n; i++)
            for (int c = 0; c < f; c++) raw[i, c] = Math.Log(_inputs.Rows[i][c]) - Math.Log(_inputs.Rows[i - 1][c]);
        var (mean, std) = (new double[f], new double[f]);
        for (int c = 0; c < f; c++)
        {
            var seen = Enumerable.Range(1, end - 1).Select(i => raw[i, c]).ToArray();
            mean[c] = seen.Average();
            std[c] = Math.Max(1e-12, Math.Sqrt(seen.Select(x => (x - mean[c]) * (x - mean[c])).Average()));
        }
        var scaled = new float[n * f];
        for (int i = 1; i < n; i++)
            for (int c = 0; c < f; c++) scaled[i * f + c] = (float)((raw[i, c] - mean[c]) / std[c]);
        return (scaled, mean, std);
    }

    (double Loss, long Parameters, double[][][] Forecasts) TrainFold(int fold)
    {
        var (d, t) = (_config.Data, _config.Training);
        int split = Splits[fold], f = _inputs.Columns.Length;
        var (returns, mean, std) = ScaledReturns(split);                     // no statistic reads the test segment
        using var flat = tensor(returns);
        using var series = flat.view(_inputs.Length, f);                      // [T, F]
        using var targetIndex = tensor(_targetColumns.Select(c => (long)c).ToArray());
        // Training origins: the window r_{t−L+1…t} and its targets r_{t+1…t+H} all lie before the split.
        int firstOrigin = d.Window, lastOrigin = split - 1 - d.Horizon;
        TorchRuntime.Seed(SeedMixer.Derive(t.Seed, fold));
        var model = _config.BuildModel(f, d.Horizon * _targetColumns.Length);              // [B, H·F'] → [B, H, F']
        var random = new Random(SeedMixer.Derive(t.Seed, fold, 1));
        double smoothed = FitLoop.Run(model, t, $"fold {fold + 1}", _ =>
        {
            var origins = Enumerable.Range(0, t.BatchSize).Select(_ => random.Next(firstOrigin, lastOrigin + 1)).ToArray();
            var (window, target) = Batch(series, targetIndex, origins);
            return nn.functional.mse_loss(model.forward(window).view_as(target!), target!);
        });
        var forecasts = new List<double[][]>();
        var foldOrigins = Origins(fold);
        using (no_grad())
            foreach (var piece in foldOrigins.Chunk(256))
            {
                using var scope = NewDisposeScope();
                var (window, _) = Batch(series, targetIndex, piece, withTargets: false);
                var predicted = model.forward(window).to(float64).data<double>().ToArray();   // [B, H·F'] scaled returns
                for (int b = 0; b < piece.Length; b++) forecasts.Add(Prices(piece[b], predicted, b, mean, std));
            }
        long parameters = model.parameters().Sum(p => p.numel());
        model.Dispose();
        return (smoothed, parameters, [.. forecasts]);
    }

    /// <summary>Windows [B, L, F] ending at each origin and (optionally) their targets [B, H, F'].</summary>
    (Tensor Window, Tensor? Target) Batch(Tensor series, Tensor targetIndex, int[] origins, bool withTargets = true)
    {
        var d = _config.Data;
        var steps = tensor(origins.Select(o => (long)o).ToArray()).unsqueeze(1);                    // [B, 1]
        var window = series.index_select(0, (steps + arange(-d.Window + 1, 1)).flatten())
            .view(origins.Length, d.Window, -1);
        if (!withTargets) return (window, null);
        var target = series.index_select(0, (steps + arange(1, d.Horizon + 1)).flatten())
            .view(origins.Length, d.Horizon, -1).index_select(2, targetIndex);
        return (window, target);
    }

    /// <summary>Prices ŷ_{t+h} = y_t exp(Σ_{j≤h} r̂_{t+j}) from row b of the scaled predicted returns [B, H, F'].</summary>
    double[][] Prices(int origin, double[] predicted, int b, double[] mean, double[] std)
    {
        int h = _config.Data.Horizon, k = _targetColumns.Length;
        var prices = new double[h][];
        var logPrice = _targets.Rows[origin].Select(y => Math.Log(y)).ToArray();
        for (int step = 0; step < h; step++)
        {
            for (int c = 0; c < k; c++)
            {
                int column = _targetColumns[c];
                logPrice[c] += predicted[(b * h + step) * k + c] * std[column] + mean[column];
            }
            prices[step] = [.. logPrice.Select(x => Math.Exp(x))];
        }
        return prices;
    }
}
