using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using Mnemo.IO;
using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>A rule the kernel benchmark measures: a kernel and its gate.</summary>
/// <param name="Name">the name --rules takes</param>
public sealed record BenchRule(string Name, MatrixKernelKind Kind, BenchGate Gate, string Description)
{
    public static readonly BenchRule Linear = new("linear", MatrixKernelKind.GatedLinear, BenchGate.None, "linear attention (no gate)");
    public static readonly BenchRule GatedScalar = new("gated-scalar", MatrixKernelKind.GatedLinear, BenchGate.Scalar, "gated linear, one log-gate per head (RetNet, Mamba-2)");
    public static readonly BenchRule GatedChannel = new("gated-channel", MatrixKernelKind.GatedLinear, BenchGate.Channel, "gated linear, one log-gate per key channel (GLA)");
    public static readonly BenchRule Delta = new("delta", MatrixKernelKind.Delta, BenchGate.None, "delta rule (DeltaNet)");
    public static readonly BenchRule GatedDelta = new("gated-delta", MatrixKernelKind.Delta, BenchGate.Scalar, "gated delta rule (Gated DeltaNet)");

    public static readonly BenchRule[] All = [Linear, GatedScalar, GatedChannel, Delta, GatedDelta];

    public static BenchRule Parse(string name) =>
        All.FirstOrDefault(r => r.Name.Equals(name.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new MnemoException($"unknown rule \"{name}\"; allowed: {string.Join(", ", All.Select(r => r.Name))}");
}

public enum BenchGate { None, Scalar, Channel }

/// <summary>What <see cref="KernelBenchmark"/> measures. <see cref="Quick"/> is a smoke-test sized variant.</summary>
public sealed record KernelBenchOptions
{
    public int Batch { get; init; } = 4;
    public int Heads { get; init; } = 4;
    /// <summary>Head sizes; Dk = Dv = D.</summary>
    public int[] Dims { get; init; } = [64, 128];
    public int[] Lengths { get; init; } = [1024, 4096, 16384];
    public BenchRule[] Rules { get; init; } = BenchRule.All;
    public int ChunkSize { get; init; } = 64;
    /// <summary>Timed runs per measurement (the median is reported).</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Untimed runs before them.</summary>
    public int Warmup { get; init; } = 1;
    /// <summary>The step loop is timed at most this long and extrapolated linearly beyond (it is linear in T).</summary>
    public int StepMaxLength { get; init; } = 1024;
    /// <summary>The naive reference runs only at the smallest length, and only if it is at most this long.</summary>
    public int NaiveMaxLength { get; init; } = 1024;
    /// <summary>Measure causal SDPA attention at every (D, T).</summary>
    public bool Attention { get; init; } = true;
    public int[] PeakSizes { get; init; } = MatmulPeak.DefaultSizes;
    public int PeakRepeats { get; init; } = 5;
    public bool Bf16Peak { get; init; } = true;
    public int Seed { get; init; } = 1234;

    /// <summary>Tiny shapes for a smoke test: a few seconds in all.</summary>
    public static KernelBenchOptions Quick => new()
    {
        Batch = 2, Heads = 2, Dims = [16], Lengths = [64, 256], ChunkSize = 16, Repeats = 1, Warmup = 1,
        StepMaxLength = 64, NaiveMaxLength = 64, PeakSizes = [128, 256], PeakRepeats = 2,
    };

    public void Validate()
    {
        static void Positive(string name, IEnumerable<int> values)
        {
            foreach (int v in values)
                if (v < 1) throw new MnemoException($"{name} must be positive, got {v}");
        }
        Positive("batch", [Batch]);
        Positive("heads", [Heads]);
        Positive("--dims", Dims);
        Positive("--lengths", Lengths);
        Positive("--chunk-size", [ChunkSize]);
        Positive("--repeats", [Repeats]);
        Positive("step max length", [StepMaxLength]);
        Positive("peak sizes", PeakSizes);
        if (Dims.Length == 0) throw new MnemoException("--dims needs at least one head size");
        if (Lengths.Length == 0) throw new MnemoException("--lengths needs at least one length");
        if (Rules.Length == 0) throw new MnemoException("--rules needs at least one rule");
        if (Warmup < 0) throw new MnemoException($"warm-up runs must be non-negative, got {Warmup}");
    }
}

/// <summary>One timed mode (forward, or forward+backward) of one row.</summary>
/// <param name="Ms">median time (extrapolated rows: the measured median × T / measured T)</param>
/// <param name="SamplesMs">the timed runs at the measured length (not extrapolated)</param>
/// <param name="Gflop">FLOPs of the model in <see cref="KernelFlops"/>, in 10⁹</param>
/// <param name="FractionOfFp32Peak">achieved rate / measured fp32 matmul peak</param>
public sealed record Measurement(double Ms, double BestMs, double[] SamplesMs, double TokensPerSecond, double Gflop,
    double GflopPerSecond, double FractionOfFp32Peak);

/// <summary>
/// One (rule, form, D, T) result. Form is "chunk", "step" (the token-by-token step loop: the naive-loop
/// baseline), "naive" (the per-token reference) or "sdpa" (causal softmax attention, rule "attention").
/// Speed-ups are baseline time / this row's time (> 1: this row is faster); scaling is
/// t(T) / ((T / T_prev) · t(T_prev)) against the previous length measured (1 = linear in T).
/// </summary>
public sealed record KernelBenchRow(
    string Rule, string Form, int Batch, int Heads, int Dk, int Dv, int T, int? ChunkSize,
    int MeasuredT, bool Extrapolated, Measurement Forward, Measurement ForwardBackward,
    double? SpeedupOverStepForward = null, double? SpeedupOverStepForwardBackward = null,
    double? SpeedupOverSdpaForward = null, double? SpeedupOverSdpaForwardBackward = null,
    int? ScalingFromT = null, double? ScalingForward = null, double? ScalingForwardBackward = null);

/// <summary>Settings as reported (rule names rather than objects).</summary>
public sealed record KernelBenchSettings(int Batch, int Heads, int[] Dims, int[] Lengths, string[] Rules, int ChunkSize,
    int Repeats, int Warmup, int StepMaxLength, int NaiveMaxLength, bool Attention, string Timing, string ForwardMode);

public sealed record KernelBenchReport(
    MachineInfo Machine, KernelBenchSettings Settings, MatmulPeakResult PeakFp32, MatmulPeakResult? PeakBf16,
    string FlopModel, KernelBenchRow[] Rows, double? LoadAverageAtEnd, double ElapsedSeconds)
{
    /// <summary>snake_case like the configs; non-ASCII (·, ², ×) written as is rather than \u escapes.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new(ConfigBinder.WriteOptions) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public void WriteJson(string path) => AtomicFile.WriteAllText(path, ToJson() + "\n");
}

/// <summary>
/// `mnemo bench kernels`: the matrix-memory kernels' speed against the machine's own matmul peak and against the
/// two baselines (the step loop, causal SDPA attention), forward and forward+backward.
/// <para>Forward is timed under no_grad (inference and prefill); forward+backward runs the forward with autograd and
/// takes the gradients of sum(o·dO) + sum(S_T·dS) with respect to every input (q, k, v, g, β) by
/// <c>torch.autograd.grad</c>, with fixed random cotangents dO, dS, as the equivalence tests do.</para>
/// <para>Inputs are seeded random tensors in fp32 and fla's layout [B, T, H, D]; for the delta rules the keys are
/// L2-normalised (as their layers do) and β ∈ (0, 1); log-gates are drawn from [−0.1, −0.001] (scalar [B, T, H] or
/// per channel [B, T, H, Dk]); there is no initial state.</para>
/// </summary>
public static class KernelBenchmark
{
    public const string TimingNote = "warm-up runs, then the median of the timed runs; each run in its own dispose scope, freed after the clock stops";
    public const string ForwardNote = "forward under no_grad; forward+backward = forward with autograd + torch.autograd.grad of sum(o·dO)+sum(S·dS) w.r.t. all inputs";

    sealed record Key(string Rule, string Form, int D, int T);

    public static KernelBenchReport Run(KernelBenchOptions options, Action<string>? log = null)
    {
        options.Validate();
        log ??= _ => { };
        var clock = Stopwatch.StartNew();
        var machine = MachineInfo.Capture();

        log($"matmul peak fp32 (sizes {string.Join(", ", options.PeakSizes)}) …");
        var peak32 = MatmulPeak.Measure(ScalarType.Float32, options.PeakSizes, options.PeakRepeats);
        log($"  fp32 peak {peak32.GflopPerSecond:F1} GFLOP/s at n={peak32.BestN}");
        MatmulPeakResult? peak16 = null;
        if (options.Bf16Peak)
        {
            log("matmul peak bf16 …");
            peak16 = MatmulPeak.Measure(ScalarType.BFloat16, options.PeakSizes, options.PeakRepeats);
            log($"  bf16 peak {peak16.GflopPerSecond:F1} GFLOP/s at n={peak16.BestN}");
        }

        var measured = new Dictionary<Key, (TimingStats Fwd, TimingStats FwdBwd)>();
        var dims = options.Dims.Distinct().ToArray();
        var lengths = options.Lengths.Distinct().Order().ToArray();
        int smallest = lengths[0];
        foreach (int d in dims)
        foreach (int t in lengths)
        {
            if (options.Attention)
            {
                log($"attention (sdpa) D={d} T={t} …");
                measured[new("attention", "sdpa", d, t)] = MeasureAttention(options, d, t);
            }
            foreach (var rule in options.Rules)
            {
                log($"{rule.Name} D={d} T={t} chunk …");
                measured[new(rule.Name, "chunk", d, t)] = MeasureKernel(options, rule, KernelForm.Chunk, d, t);
                int stepT = Math.Min(t, options.StepMaxLength);
                var stepKey = new Key(rule.Name, "step", d, stepT);
                if (!measured.ContainsKey(stepKey))
                {
                    log($"{rule.Name} D={d} T={stepT} step loop …");
                    measured[stepKey] = MeasureKernel(options, rule, KernelForm.Step, d, stepT);
                }
                if (t == smallest && t <= options.NaiveMaxLength)
                {
                    log($"{rule.Name} D={d} T={t} naive reference …");
                    measured[new(rule.Name, "naive", d, t)] = MeasureKernel(options, rule, KernelForm.Naive, d, t);
                }
            }
        }

        var rows = BuildRows(options, dims, lengths, measured, peak32.GflopPerSecond);
        var settings = new KernelBenchSettings(options.Batch, options.Heads, dims, lengths, [.. options.Rules.Select(r => r.Name)],
            options.ChunkSize, options.Repeats, options.Warmup, options.StepMaxLength, options.NaiveMaxLength, options.Attention,
            TimingNote, ForwardNote);
        return new KernelBenchReport(machine, settings, peak32, peak16, KernelFlops.Description, rows,
            MachineInfo.LoadAverage(), clock.Elapsed.TotalSeconds);
    }

    static KernelBenchRow[] BuildRows(KernelBenchOptions o, int[] dims, int[] lengths,
        Dictionary<Key, (TimingStats Fwd, TimingStats FwdBwd)> measured, double peak)
    {
        var rows = new List<KernelBenchRow>();
        Measurement M(TimingStats s, int t, double forwardFlops, double factor) => new(
            s.MedianMs, s.BestMs, s.SamplesMs, o.Batch * (double)t / (s.MedianMs * 1e-3), factor * forwardFlops / 1e9,
            factor * forwardFlops / (s.MedianMs * 1e-3) / 1e9, factor * forwardFlops / (s.MedianMs * 1e-3) / 1e9 / peak);
        (Measurement, Measurement) Both((TimingStats Fwd, TimingStats FwdBwd) s, int t, double forwardFlops) =>
            (M(s.Fwd, t, forwardFlops, 1), M(s.FwdBwd, t, forwardFlops, KernelFlops.ForwardBackwardFactor));
        static double? Ratio(double? numerator, double denominator) => numerator is null ? null : numerator / denominator;

        foreach (var rule in o.Rules)
        foreach (int d in dims)
        {
            for (int i = 0; i < lengths.Length; i++)
            {
                int t = lengths[i];
                var chunk = measured[new(rule.Name, "chunk", d, t)];
                // The step loop at this length: measured, or measured at the cap and scaled by T / T_measured.
                int stepT = Math.Min(t, o.StepMaxLength);
                var stepRaw = measured[new(rule.Name, "step", d, stepT)];
                double stretch = (double)t / stepT;
                var step = (Fwd: stepRaw.Fwd.Scaled(stretch), FwdBwd: stepRaw.FwdBwd.Scaled(stretch));
                var sdpa = measured.TryGetValue(new("attention", "sdpa", d, t), out var a) ? a : ((TimingStats, TimingStats)?)null;

                var (cf, cb) = Both(chunk, t, KernelFlops.ChunkForward(rule.Kind, o.Batch, o.Heads, t, d, d, o.ChunkSize));
                int? fromT = i > 0 ? lengths[i - 1] : null;
                double? scaleF = null, scaleB = null;
                if (fromT is int prev)
                {
                    var before = measured[new(rule.Name, "chunk", d, prev)];
                    double grow = (double)t / prev;
                    scaleF = chunk.Fwd.MedianMs / (grow * before.Fwd.MedianMs);
                    scaleB = chunk.FwdBwd.MedianMs / (grow * before.FwdBwd.MedianMs);
                }
                rows.Add(new KernelBenchRow(rule.Name, "chunk", o.Batch, o.Heads, d, d, t, o.ChunkSize, t, false, cf, cb,
                    step.Fwd.MedianMs / chunk.Fwd.MedianMs, step.FwdBwd.MedianMs / chunk.FwdBwd.MedianMs,
                    Ratio(sdpa?.Item1.MedianMs, chunk.Fwd.MedianMs), Ratio(sdpa?.Item2.MedianMs, chunk.FwdBwd.MedianMs),
                    fromT, scaleF, scaleB));

                var (sf, sb) = Both(step, t, KernelFlops.RecurrentForward(rule.Kind, o.Batch, o.Heads, t, d, d));
                rows.Add(new KernelBenchRow(rule.Name, "step", o.Batch, o.Heads, d, d, t, null, stepT, stepT != t, sf, sb,
                    SpeedupOverSdpaForward: Ratio(sdpa?.Item1.MedianMs, step.Fwd.MedianMs),
                    SpeedupOverSdpaForwardBackward: Ratio(sdpa?.Item2.MedianMs, step.FwdBwd.MedianMs)));

                if (measured.TryGetValue(new(rule.Name, "naive", d, t), out var naive))
                {
                    var (nf, nb) = Both(naive, t, KernelFlops.RecurrentForward(rule.Kind, o.Batch, o.Heads, t, d, d));
                    rows.Add(new KernelBenchRow(rule.Name, "naive", o.Batch, o.Heads, d, d, t, null, t, false, nf, nb,
                        step.Fwd.MedianMs / naive.Fwd.MedianMs, step.FwdBwd.MedianMs / naive.FwdBwd.MedianMs,
                        Ratio(sdpa?.Item1.MedianMs, naive.Fwd.MedianMs), Ratio(sdpa?.Item2.MedianMs, naive.FwdBwd.MedianMs)));
                }
            }
        }
        foreach (int d in dims)
        for (int i = 0; i < lengths.Length; i++)
        {
            int t = lengths[i];
            if (!measured.TryGetValue(new("attention", "sdpa", d, t), out var sdpa)) continue;
            var (f, b) = Both(sdpa, t, KernelFlops.AttentionForward(o.Batch, o.Heads, t, d));
            int? fromT = i > 0 ? lengths[i - 1] : null;
            double? scaleF = null, scaleB = null;
            if (fromT is int prev)
            {
                var before = measured[new("attention", "sdpa", d, prev)];
                double grow = (double)t / prev;
                scaleF = sdpa.Fwd.MedianMs / (grow * before.Fwd.MedianMs);
                scaleB = sdpa.FwdBwd.MedianMs / (grow * before.FwdBwd.MedianMs);
            }
            rows.Add(new KernelBenchRow("attention", "sdpa", o.Batch, o.Heads, d, d, t, null, t, false, f, b,
                ScalingFromT: fromT, ScalingForward: scaleF, ScalingForwardBackward: scaleB));
        }
        return [.. rows];
    }

    /// <summary>Seeded fp32 leaves for one rule at one shape (see the class summary for their distributions).</summary>
    public sealed class Inputs : IDisposable
    {
        public required Tensor Q, K, V;
        public Tensor? G, Beta;
        public required Tensor DO, DS;

        public Tensor[] Leaves => [.. new[] { Q, K, V, G, Beta }.OfType<Tensor>()];

        public static Inputs Create(BenchRule rule, int batch, int heads, int d, int t, int seed)
        {
            using var scope = NewDisposeScope();
            using var gen = new Generator((ulong)(seed + 7919L * d + t));
            var q = randn([batch, t, heads, d], generator: gen) * Math.Pow(d, -0.5);
            var k = randn([batch, t, heads, d], generator: gen);
            k = rule.Kind == MatrixKernelKind.Delta ? nn.functional.normalize(k, p: 2, dim: -1) : k * Math.Pow(d, -0.5);
            var v = randn([batch, t, heads, d], generator: gen);
            Tensor? g = rule.Gate switch
            {
                BenchGate.Scalar => rand([batch, t, heads], generator: gen) * -0.099 - 0.001,
                BenchGate.Channel => rand([batch, t, heads, d], generator: gen) * -0.099 - 0.001,
                _ => null,
            };
            Tensor? beta = rule.Kind == MatrixKernelKind.Delta ? rand([batch, t, heads], generator: gen) : null;
            var x = new Inputs
            {
                Q = Leaf(q), K = Leaf(k), V = Leaf(v), G = g is null ? null : Leaf(g), Beta = beta is null ? null : Leaf(beta),
                DO = randn([batch, t, heads, d], generator: gen).MoveToOuterDisposeScope(),
                DS = randn([batch, heads, d, d], generator: gen).MoveToOuterDisposeScope(),
            };
            return x;
        }

        static Tensor Leaf(Tensor x) => x.detach().requires_grad_(true).MoveToOuterDisposeScope();

        public KernelInputs Kernel => new(Q, K, V, G, Beta);

        public void Dispose()
        {
            foreach (var t in new[] { Q, K, V, G, Beta, DO, DS }) t?.Dispose();
        }
    }

    /// <summary>Times one rule in one form at one shape: forward (no_grad) and forward+backward.</summary>
    public static (TimingStats Forward, TimingStats ForwardBackward) MeasureKernel(KernelBenchOptions o, BenchRule rule, KernelForm form, int d, int t)
    {
        using var x = Inputs.Create(rule, o.Batch, o.Heads, d, t, o.Seed);
        var forward = Timing.Measure(() =>
        {
            using var _ = no_grad();
            MatrixKernels.Run(rule.Kind, form, x.Kernel, o.ChunkSize);
        }, o.Warmup, o.Repeats);
        var both = Timing.Measure(() =>
        {
            var (y, s) = MatrixKernels.Run(rule.Kind, form, x.Kernel, o.ChunkSize);
            var loss = (y * x.DO).sum() + (s * x.DS).sum();
            torch.autograd.grad([loss], x.Leaves);
        }, o.Warmup, o.Repeats);
        return (forward, both);
    }

    /// <summary>Times causal SDPA attention on [B, H, T, D] inputs: forward (no_grad) and forward+backward of sum(o·dO).</summary>
    public static (TimingStats Forward, TimingStats ForwardBackward) MeasureAttention(KernelBenchOptions o, int d, int t)
    {
        using var gen = new Generator((ulong)(o.Seed + 31L * d + t));
        using var q = randn([o.Batch, o.Heads, t, d], generator: gen).requires_grad_(true);
        using var k = randn([o.Batch, o.Heads, t, d], generator: gen).requires_grad_(true);
        using var v = randn([o.Batch, o.Heads, t, d], generator: gen).requires_grad_(true);
        using var dO = randn([o.Batch, o.Heads, t, d], generator: gen);
        var forward = Timing.Measure(() =>
        {
            using var _ = no_grad();
            nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        }, o.Warmup, o.Repeats);
        var both = Timing.Measure(() =>
        {
            var y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
            torch.autograd.grad([(y * dO).sum()], [q, k, v]);
        }, o.Warmup, o.Repeats);
        return (forward, both);
    }
}
