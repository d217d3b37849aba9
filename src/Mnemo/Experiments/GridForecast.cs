using System.Diagnostics;
using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>The models <see cref="GridForecast"/> compares.</summary>
public enum GridModel
{
    /// <summary><see cref="ConvLstmForecaster"/>.</summary>
    ConvLstm,
    /// <summary><see cref="FcLstmForecaster"/>.</summary>
    FcLstm,
}

/// <summary>The task, the models' shapes and the budget of <see cref="GridForecast"/> (docs/grid-forecast.md).</summary>
public sealed record GridForecastConfig
{
    public int Size { get; init; } = 16;
    public int Shapes { get; init; } = 2;
    /// <summary>Shapes per sequence in the second test set (the paper's out-of-domain test: 3 digits after training on 2).</summary>
    public int TestShapes { get; init; } = 3;
    public int InputFrames { get; init; } = 10;
    public int OutputFrames { get; init; } = 10;
    public int Batch { get; init; } = 16;
    public int Steps { get; init; } = 1500;
    public double Lr { get; init; } = 1e-3;
    public double GradClip { get; init; } = 1.0;
    /// <summary>ConvLSTM: channels of H and C per layer.</summary>
    public int Hidden { get; init; } = 16;
    public int Kernel { get; init; } = 5;
    public int Layers { get; init; } = 2;
    /// <summary>FC-LSTM: units per layer.</summary>
    public int FcHidden { get; init; } = 512;
    public int TestSequences { get; init; } = 256;

    public void Validate()
    {
        foreach (var (name, value) in new[] { ("shapes", Shapes), ("test shapes", TestShapes), ("input frames", InputFrames),
            ("output frames", OutputFrames), ("batch", Batch), ("steps", Steps), ("hidden", Hidden), ("layers", Layers),
            ("fc hidden", FcHidden), ("test sequences", TestSequences) })
            if (value < 1) throw new MnemoException($"{name} must be at least 1, got {value}");
        if (Size <= MovingShapes.Glyph) throw new MnemoException($"size must be larger than a glyph ({MovingShapes.Glyph}), got {Size}");
        if (Kernel < 1 || Kernel % 2 == 0) throw new MnemoException($"kernel must be odd and positive, got {Kernel}");
        if (!(Lr > 0) || !double.IsFinite(Lr)) throw new MnemoException($"lr must be a positive number, got {Lr}");
    }
}

/// <summary>How well a forecaster did on one test set: the paper's cross-entropy per sequence (summed over the pixels of
/// every predicted frame), the same per predicted frame, and the intersection over union of the pixels predicted on
/// (p &gt; 0.5) with the true ones, over the whole test set.</summary>
public sealed record GridScore(int Shapes, double CrossEntropy, double[] CrossEntropyPerFrame, double Iou);

/// <summary>One trained model (or the persistence baseline: no parameters, no steps). <see cref="Example"/> is its predicted
/// probabilities for the first test sequence [future · S · S] (the frames plot).</summary>
public sealed record GridForecastRun(string Model, int Seed, long Parameters, GridScore[] Scores, double[] TrainLoss, double Seconds)
{
    [System.Text.Json.Serialization.JsonIgnore] public float[] Example { get; init; } = [];
}

/// <summary>
/// Precipitation-nowcasting-style grid forecasting on moving shapes (Shi et al. 2015, arXiv 1506.04214;
/// docs/grid-forecast.md): trains the ConvLSTM encoding-forecasting network and the FC-LSTM baseline on
/// <see cref="MovingShapes"/> to predict the next 10 frames from 10, and scores them on fixed test sets.
/// </summary>
public static class GridForecast
{
    /// <summary>The test sets are the same for every model and seed.</summary>
    const int TestSeed = 20150612;

    public static nn.Module<Tensor, Tensor> Build(GridModel model, GridForecastConfig c) => model switch
    {
        GridModel.ConvLstm => new ConvLstmForecaster(c.Size, c.Hidden, c.Kernel, c.Layers),
        GridModel.FcLstm => new FcLstmForecaster(c.Size, c.FcHidden, c.Layers),
        _ => throw new ArgumentOutOfRangeException(nameof(model)),
    };

    /// <summary>Trains <paramref name="model"/> from seed <paramref name="seed"/> and scores it. <paramref name="log"/> gets a
    /// line every tenth of the budget.</summary>
    public static GridForecastRun Run(GridModel model, int seed, GridForecastConfig c, Action<string>? log = null)
    {
        c.Validate();
        var clock = Stopwatch.StartNew();
        TorchRuntime.Seed(seed);
        var net = Build(model, c);
        var forecaster = (IGridForecaster)net;
        var adam = optim.Adam(net.parameters(), c.Lr);
        var losses = new List<double>();
        int every = Math.Max(1, c.Steps / 10);
        double recent = 0;
        for (int step = 1; step <= c.Steps; step++)
        {
            using (var scope = NewDisposeScope())
            using (GcQuiet.Enter())
            {
                var frames = MovingShapes.Sample(c.Batch, c.InputFrames + c.OutputFrames, c.Size, c.Shapes, SeedMixer.Derive(seed, step));
                var (past, future) = Split(frames, c.InputFrames);
                var logits = forecaster.Forecast(past, c.OutputFrames);
                var loss = nn.functional.binary_cross_entropy_with_logits(logits, future, reduction: nn.Reduction.Sum) / c.Batch;
                adam.zero_grad();
                loss.backward();
                nn.utils.clip_grad_norm_(net.parameters(), c.GradClip);
                adam.step();
                recent += loss.item<float>();
            }
            if (step % every != 0) continue;
            losses.Add(recent / every);
            log?.Invoke($"{Names.Of(model)} seed {seed}: step {step}/{c.Steps}, cross-entropy per sequence {recent / every:F1} " +
                $"({clock.Elapsed.TotalSeconds:F0} s)");
            recent = 0;
        }
        net.eval();
        var scores = new[] { c.Shapes, c.TestShapes }.Distinct()
            .Select(shapes => Score(c, shapes, TestSet(c, shapes), past => forecaster.Forecast(past, c.OutputFrames))).ToArray();
        long parameters = net.parameters().Sum(p => p.numel());
        return new GridForecastRun(Names.Of(model), seed, parameters, scores, [.. losses], clock.Elapsed.TotalSeconds)
        {
            Example = Example(c, past => forecaster.Forecast(past, c.OutputFrames)),
        };
    }

    /// <summary>
    /// The persistence baseline: every future frame is the last input frame, each pixel predicted with probability 1 − ε
    /// where the last frame has it on and ε where off; ε is the fraction of pixels persistence gets wrong on the test set
    /// itself (the ε that minimises its cross-entropy, a favour to the baseline).
    /// </summary>
    public static GridForecastRun Persistence(GridForecastConfig c)
    {
        c.Validate();
        var scores = new[] { c.Shapes, c.TestShapes }.Distinct().Select(shapes =>
        {
            using var scope = NewDisposeScope();
            var frames = TestSet(c, shapes);
            var (past, future) = Split(frames, c.InputFrames);
            var copy = past.narrow(1, c.InputFrames - 1, 1).expand_as(future);
            double epsilon = Math.Clamp(copy.ne(future).to(ScalarType.Float64).mean().item<double>(), 1e-6, 0.5);
            var logit = Math.Log((1 - epsilon) / epsilon);
            return Score(c, shapes, frames, Copy(logit));
        }).ToArray();
        return new GridForecastRun("persistence", 0, 0, scores, [], 0) { Example = Example(c, Copy(20)) };

        Func<Tensor, Tensor> Copy(double logit) =>
            past => past.narrow(1, c.InputFrames - 1, 1).expand(-1, c.OutputFrames, -1, -1, -1) * (2 * logit) - logit;
    }

    /// <summary>The first in-domain test sequence's frames [T_in + T_out, S, S].</summary>
    public static float[] FirstTestSequence(GridForecastConfig c)
    {
        using var scope = NewDisposeScope();
        return TestSet(c with { TestSequences = 1 }, c.Shapes).data<float>().ToArray();
    }

    static float[] Example(GridForecastConfig c, Func<Tensor, Tensor> forecast)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (past, _) = Split(TestSet(c with { TestSequences = 1 }, c.Shapes), c.InputFrames);
        return sigmoid(forecast(past)).data<float>().ToArray();
    }

    static (Tensor Past, Tensor Future) Split(Tensor frames, int input) =>
        (frames.narrow(1, 0, input), frames.narrow(1, input, frames.shape[1] - input));

    static Tensor TestSet(GridForecastConfig c, int shapes) =>
        MovingShapes.Sample(c.TestSequences, c.InputFrames + c.OutputFrames, c.Size, shapes, SeedMixer.Derive(TestSeed, shapes));

    /// <param name="frames">the test set of <paramref name="shapes"/> shapes [N, T_in + T_out, 1, S, S]</param>
    static GridScore Score(GridForecastConfig c, int shapes, Tensor frames, Func<Tensor, Tensor> forecast)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (past, future) = Split(frames, c.InputFrames);
        var perFrame = zeros(c.OutputFrames, ScalarType.Float64);
        double intersection = 0, union = 0;
        for (long start = 0; start < c.TestSequences; start += c.Batch)
        {
            long n = Math.Min(c.Batch, c.TestSequences - start);
            var logits = forecast(past.narrow(0, start, n));
            var truth = future.narrow(0, start, n);
            var ce = nn.functional.binary_cross_entropy_with_logits(logits, truth, reduction: nn.Reduction.None);
            perFrame += ce.sum([0, 2, 3, 4]).to(ScalarType.Float64);
            var on = logits.gt(0);
            var real = truth.gt(0.5);
            intersection += on.logical_and(real).sum().item<long>();
            union += on.logical_or(real).sum().item<long>();
        }
        var frame = (perFrame / c.TestSequences).data<double>().ToArray();
        return new GridScore(shapes, frame.Sum(), frame, union == 0 ? 1 : intersection / union);
    }
}
