using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tasks;
using Mnemo.Training;
using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>What `mnemo bench train` times: one base run config, the mixers swapped into it, and how many steps.</summary>
/// <param name="Source">where the base config came from (a file, a preset, or the demo sweep's base)</param>
/// <param name="Sets">FIELD=VALUE overrides applied to the base before each mixer's</param>
/// <param name="Precisions">the precisions each mixer is timed in, one row each (training.precision)</param>
sealed record TrainBenchSettings(string Source, string[] Mixers, string[] Sets, int Warmup, int Steps, Precision[] Precisions);

/// <summary>One mixer's training step: medians over the timed steps, in ms; tokens = batch × sequence length.</summary>
/// <param name="ScoredPerStep">positions the loss scores per step (the head runs on these only)</param>
/// <param name="DenseFlopsPerStep">the step's dense-layer FLOPs (<see cref="TrainStepBenchmark.FlopModel"/>)</param>
/// <param name="KernelForwardMs">of the forward, the sequence kernels' share (memory kernels, attention; <see cref="KernelClock"/>)</param>
/// <param name="KernelBackwardMs">of the backward, the sequence kernels' share</param>
/// <param name="FractionOfPeak">the dense rate against the matmul peak of the row's precision</param>
/// <param name="SpeedupOverFp32">tokens/s against the same mixer's fp32 row of this run (null for fp32 rows, or without one)</param>
/// <param name="Bf16Estimate">for a bf16 row, what <see cref="SpeedupOverFp32"/> would be if only the dense products got
/// faster, by the ratio of this run's peaks (<see cref="TrainStepBenchmark.Bf16Estimate"/>); null otherwise</param>
sealed record TrainBenchRow(string Mixer, Precision Precision, long Parameters, long TokensPerStep, long ScoredPerStep, double StepMs,
    double DataMs,
    double ForwardMs, double BackwardMs, double OptimizerMs, double TokensPerSecond, double DenseFlopsPerStep,
    double DenseGflopPerSecond, double FractionOfPeak, double KernelForwardMs, double KernelBackwardMs, double? SpeedupOverFp32,
    double? Bf16Estimate = null);

sealed record TrainBenchReport(MachineInfo Machine, TrainBenchSettings Settings, MatmulPeakResult PeakFp32, MatmulPeakResult? PeakBf16,
    string FlopModel,
    TrainBenchRow[] Rows, double? LoadAverageAtEnd, double ElapsedSeconds)
{
    public void WriteJson(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this,
        new JsonSerializerOptions(ConfigBinder.WriteOptions) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
}

/// <summary>
/// Times whole training steps, the number a user feels: for each mixer, the base config's model and data with
/// that mixer, AdamW as `mnemo train` builds it, and <see cref="TrainingStep.Run"/> — the trainer's own step — after
/// warm-up steps. Each step is split into data (the batch's rows to tensors), forward (model, scored logits, loss),
/// backward and optimizer (clipping and the update). No evaluation, no checkpoints. The fp32 matmul peak is measured
/// in the same process first, so the fraction of peak compares like with like (docs/benchmarks.md#bench-train-whole-training-steps).
/// </summary>
static class TrainStepBenchmark
{
    public const string FlopModel =
        "dense FLOPs per step = 6 · tokens · P + 6 · scored · V · D: P = the 2-D weights applied at every position (projections, " +
        "short-convolution filters, MLPs; not the embeddings or the head), the head on the scored positions only; forward 2 FLOPs " +
        "per multiply-add, backward twice that. The mixers' own sequence work (attention scores, the memory kernels) is not " +
        "counted, so the rate is a lower bound of the work done.";

    public static TrainBenchReport Run(RunConfig baseConfig, TrainBenchSettings s, Action<string>? progress = null)
    {
        if (s.Steps < 1) throw new MnemoException($"--steps must be at least 1, got {s.Steps}");
        if (s.Warmup < 0) throw new MnemoException($"--warmup must be at least 0, got {s.Warmup}");
        if (s.Mixers.Length == 0) throw new MnemoException("--mixers: name at least one mixer");
        if (s.Precisions.Length == 0) throw new MnemoException("--precisions: name at least one of fp32, bf16");
        var clock = Stopwatch.StartNew();
        var machine = MachineInfo.Capture();
        // Every config is bound before anything is timed, so a bad mixer or override fails at once.
        var configs = s.Mixers.Select(m => RunConfig.Parse(baseConfig.ToJson(), s.Source, [.. s.Sets, $"model.mixer={m}"])).ToList();
        progress?.Invoke("measuring the fp32 matmul peak");
        var peak = MatmulPeak.Measure(ScalarType.Float32, MatmulPeak.DefaultSizes, repeats: 3);
        MatmulPeakResult? peak16 = null;
        if (s.Precisions.Contains(Precision.Bf16))
        {
            progress?.Invoke("measuring the bf16 matmul peak");
            peak16 = MatmulPeak.Measure(ScalarType.BFloat16, MatmulPeak.DefaultSizes, repeats: 3);
        }
        var rows = new List<TrainBenchRow>();
        foreach (var (mixer, config) in s.Mixers.Zip(configs))
        {
            TrainBenchRow? fp32 = null;
            foreach (var precision in s.Precisions)
            {
                progress?.Invoke($"{mixer}, {Names.Of(precision)}: {s.Warmup} warm-up + {s.Steps} timed steps");
                var row = Measure(config, mixer, precision, s);
                if (precision == Precision.Fp32) fp32 = row;
                else if (fp32 is not null) row = row with { SpeedupOverFp32 = row.TokensPerSecond / fp32.TokensPerSecond };
                rows.Add(row);
            }
        }
        // The peaks again after the steps, keeping the better (MatmulPeak), and each row's fraction against its own.
        progress?.Invoke("measuring the matmul peak again");
        peak = peak.Best(MatmulPeak.Measure(ScalarType.Float32, MatmulPeak.DefaultSizes, repeats: 3));
        peak16 = peak16?.Best(MatmulPeak.Measure(ScalarType.BFloat16, MatmulPeak.DefaultSizes, repeats: 3));
        var measured = rows.Select(r => r with
        {
            FractionOfPeak = r.DenseGflopPerSecond / (r.Precision == Precision.Bf16 ? peak16! : peak).GflopPerSecond,
        }).ToList();
        // Each bf16 row beside the fp32 row its × fp32 is taken against (the same mixer's latest).
        for (int i = 1; i < measured.Count; i++)
            if (measured[i] is { Precision: Precision.Bf16, SpeedupOverFp32: not null } bf16)
            {
                var fp32 = measured.Take(i).Last(r => r.Mixer == bf16.Mixer && r.Precision == Precision.Fp32);
                measured[i] = bf16 with { Bf16Estimate = Bf16Estimate(fp32.FractionOfPeak, peak16!.GflopPerSecond / peak.GflopPerSecond) };
            }
        return new TrainBenchReport(machine, s, peak, peak16, FlopModel, [.. measured], MachineInfo.LoadAverage(),
            clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The step's speed-up if its dense products ran <paramref name="ratio"/> times faster and nothing else changed (Amdahl):
    /// 1 / (1 − f + f / r), with f = <paramref name="fractionOfPeak"/> of the fp32 step, the share of it the products would
    /// take at the fp32 peak (clamped to [0, 1]). An estimate, not a bound: casts cost bf16 a little, and products slower
    /// than the peak leave it a little more to gain (docs/architecture.md#bf16-matmuls).
    /// </summary>
    public static double Bf16Estimate(double fractionOfPeak, double ratio)
    {
        double f = Math.Clamp(fractionOfPeak, 0, 1);
        return 1 / (1 - f + f / ratio);
    }

    /// <summary>One mixer's steps in one precision; the row's fraction of the peak is filled in by <see cref="Run"/>.</summary>
    static TrainBenchRow Measure(RunConfig config, string mixer, Precision precision, TrainBenchSettings s)
    {
        var t = config.Training;
        var task = config.Task;
        var schedule = new BatchSchedule(task.TrainBatches(), t.BatchSize, t.Seed);
        TorchRuntime.Seed(t.Seed);
        using var model = config.NewModel();
        using var optimizer = Trainer.CreateOptimizer(model, t);
        model.train();
        var (data, forward, backward, update, total) = (new List<double>(), new List<double>(), new List<double>(),
            new List<double>(), new List<double>());
        var (kernelForward, kernelBackward) = (new List<double>(), new List<double>());
        long tokens = 0, scored = 0;
        KernelClock.Enabled = true;                                       // times the kernels inside each step
        using var mixed = MixedPrecision.Enter(precision);
        try
        {
            for (int step = 0; step < s.Warmup + s.Steps; step++)
            {
                using var quiet = GcQuiet.Enter();
                using var scope = NewDisposeScope();
                long start = Stopwatch.GetTimestamp();
                var (slice, batchRows) = schedule.At(step);
                var (inputs, labels) = MqarEvaluator.ToTensors(slice, batchRows);
                double dataMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                var outcome = TrainingStep.Run(model, optimizer, inputs, labels, task.Readout(), t.GradClip);
                double stepMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                if (!double.IsFinite(outcome.Loss))
                    throw new MnemoException($"{mixer}: the loss is {outcome.Loss} at step {step + 1}; the timing would be meaningless");
                if (step < s.Warmup)
                {
                    KernelClock.Take();
                    continue;
                }
                (tokens, scored) = (outcome.Tokens, labels.ne(TaskBatch.Ignore).sum().item<long>());
                data.Add(dataMs);
                forward.Add(outcome.Phases.ForwardMs);
                backward.Add(outcome.Phases.BackwardMs);
                update.Add(outcome.Phases.OptimizerMs);
                total.Add(stepMs);
                var (kf, kb) = KernelClock.Take();
                kernelForward.Add(kf);
                kernelBackward.Add(kb);
            }
        }
        finally
        {
            KernelClock.Enabled = false;
            KernelClock.Take();
        }
        double flops = DenseFlops(model, config.ResolvedModel, tokens, scored);
        double stepMedian = Statistics.Median(total);
        double rate = flops / (stepMedian * 1e-3) / 1e9;
        return new TrainBenchRow(mixer, precision, model.ParameterCount(), tokens, scored, stepMedian, Statistics.Median(data),
            Statistics.Median(forward),
            Statistics.Median(backward), Statistics.Median(update), tokens / (stepMedian * 1e-3), flops, rate, 0,
            Statistics.Median(kernelForward), Statistics.Median(kernelBackward), null);
    }

    /// <summary>See <see cref="FlopModel"/>.</summary>
    public static double DenseFlops(Models.LanguageModel model, ModelConfig c, long tokens, long scored)
    {
        long perPosition = model.named_parameters()
            .Where(p => p.parameter.dim() == 2 && !p.name.Contains("embeddings") && !p.name.StartsWith("lm_head", StringComparison.Ordinal))
            .Sum(p => p.parameter.numel());
        return 6.0 * tokens * perPosition + 6.0 * scored * c.VocabSize * c.DModel;
    }
}
