using System.Text.Json;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Runtime;

namespace Mnemo.Forecasting;

/// <summary>
/// A forecaster's errors over its seeds: medians with (lowest, highest), and RMSE over persistence's (&lt; 1 beats it).
/// The baselines have one "seed" (they draw nothing).
/// </summary>
public sealed record ForecastSummary(string Name, int Seeds, double Rmse, double RmseLow, double RmseHigh, double Mae, double Mape,
    double MapeLow, double MapeHigh, double MapeFirst, double MapeLast, double RmseOverPersistence, long Parameters, double TrainSeconds);

/// <summary>
/// `mnemo forecast`: the naive baselines and one forecaster per mixer and seed, all walk-forward on the same origins
/// (docs/forecasting.md). Writes forecast.json (every result per horizon, the summaries, the data's source and note) and
/// two plots of the forecasts against the truth, 1 and H steps ahead.
/// </summary>
public static class ForecastStudy
{
    public const string ResultsFile = "forecast.json";

    /// <param name="models">mixers (by config name: each runs as <see cref="ForecasterKind.Blocks"/>) and the review's
    /// forecasters ("conv_lstm", "cnn")</param>
    public static IReadOnlyList<ForecastSummary> Run(ForecastConfig config, IReadOnlyList<string> models, IReadOnlyList<int> seeds,
        string outDir, Action<string>? log = null)
    {
        if (seeds.Count == 0) throw new MnemoException("give at least one seed");
        var series = SeriesFiles.Load(config.Data.Series, config.Training.Seed);
        if (series.Note is { } note) log?.Invoke($"data: {note}");
        var walk = new WalkForward(config, series);
        var origins = walk.AllOrigins;
        var truth = walk.Truth();
        log?.Invoke($"{series.Name}: {walk.Inputs.Columns.Length} input column(s) {string.Join(", ", walk.Inputs.Columns)} → " +
            $"{string.Join(", ", walk.Targets.Columns)}; {series.Length} steps, {config.Data.Folds} folds, {origins.Length} origins, " +
            $"horizon {config.Data.Horizon}");
        var results = new List<ForecastResult>
        {
            Baseline("persistence", walk.Persistence(), truth),
            Baseline($"seasonal naive (m = {config.Data.Season})", walk.SeasonalNaive(), truth),
            Baseline("drift", walk.Drift(), truth),
        };
        foreach (var name in models)
            foreach (int seed in seeds)
            {
                var run = Configure(config, name) with { Training = config.Training with { Seed = seed } };
                if (run.Validate().FirstOrDefault() is ({ } field, { } problem)) throw new MnemoException($"{field}: {problem}");
                results.Add(new WalkForward(run, series).RunModel(name, log));
                var last = results[^1];
                log?.Invoke($"{last.Name} seed {seed}: RMSE {last.Errors.MeanRmse:F2}, MAPE {last.Errors.MeanMape:F3}% " +
                    $"({last.TrainSeconds:F0} s)");
            }

        double persistence = results[0].Errors.MeanRmse;
        var summaries = results.GroupBy(r => r.Name).Select(g => Summarise(g.ToList(), persistence)).ToList();
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, ResultsFile), JsonSerializer.Serialize(new
        {
            config,
            series = new { series.Name, series.Source, note = series.Note, steps = series.Length },
            splits = walk.Splits,
            origins = origins.Length,
            summaries,
            results = results.Select(r => new { r.Name, r.Seed, r.Errors, r.Parameters, r.TrainSeconds, r.FinalTrainLoss }),
        }, ConfigBinder.WriteOptions));
        var firstSeeds = results.GroupBy(r => r.Name).Select(g => g.First()).ToList();
        foreach (int h in new[] { 1, config.Data.Horizon }.Distinct())
            ForecastPlot.Write(walk, origins, firstSeeds, h, Path.Combine(outDir, $"forecast-h{h}.png"));
        return summaries;
    }

    /// <summary>The config that runs <paramref name="name"/>: one of the review's forecasters, or the blocks of a mixer.</summary>
    public static ForecastConfig Configure(ForecastConfig config, string name)
    {
        if (ConfigBinder.EnumNamed(typeof(ForecasterKind), name) is ForecasterKind kind and not ForecasterKind.Blocks)
            return config with { Forecaster = kind };
        var mixer = ConfigBinder.EnumNamed(typeof(MixerKind), name) as MixerKind?
            ?? throw new MnemoException($"--mixers: unknown mixer or forecaster \"{name}\" (`mnemo list` shows the mixers; the " +
                "review's forecasters are conv_lstm and cnn)");
        return config with { Forecaster = ForecasterKind.Blocks, Model = config.Model with { Mixer = mixer, LayerMixers = [] } };
    }

    static ForecastResult Baseline(string name, double[][][] forecasts, double[][][] truth) =>
        new(name, null, ForecastErrors.Of(forecasts, truth), 0, 0, [], forecasts);

    static ForecastSummary Summarise(IReadOnlyList<ForecastResult> runs, double persistenceRmse)
    {
        var rmse = runs.Select(r => r.Errors.MeanRmse).ToArray();
        var mape = runs.Select(r => r.Errors.MeanMape).ToArray();
        double median = Statistics.Median(rmse);
        return new ForecastSummary(runs[0].Name, runs.Count, median, rmse.Min(), rmse.Max(),
            Statistics.Median(runs.Select(r => r.Errors.MeanMae)), Statistics.Median(mape), mape.Min(), mape.Max(),
            Statistics.Median(runs.Select(r => r.Errors.Mape[0])), Statistics.Median(runs.Select(r => r.Errors.Mape[^1])),
            median / persistenceRmse, runs[0].Parameters, Statistics.Median(runs.Select(r => r.TrainSeconds)));
    }
}
