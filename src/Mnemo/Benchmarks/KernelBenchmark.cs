using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Mnemo.IO;
using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>A rule the kernel benchmark measures: a kernel, its gate, how a delta rule writes, and the rule around the kernel
/// (none, or one that maps its own inputs onto it: the mLSTM, Mamba-3).</summary>
/// <param name="Name">the name --rules takes</param>
/// <param name="Composed">the chunk form composed from libtorch operations even where the fused kernel applies
/// (<see cref="FusedChunk"/>): the baseline the fused kernels are measured against in the same run</param>
sealed record BenchRule(string Name, MatrixKernelKind Kind, BenchGate Gate, string Description, BenchWrite Write = BenchWrite.Beta,
    BenchWrapper Wrapper = BenchWrapper.None, bool Composed = false)
{
    public static readonly BenchRule Linear = new("linear", MatrixKernelKind.GatedLinear, BenchGate.None, "linear attention (no gate)");
    public static readonly BenchRule GatedScalar = new("gated_linear", MatrixKernelKind.GatedLinear, BenchGate.Scalar,
        "gated linear, one log-gate per head (RetNet, Mamba-2)");
    public static readonly BenchRule GatedChannel = new("gated_linear_channel", MatrixKernelKind.GatedLinear, BenchGate.Channel,
        "gated linear, one log-gate per key channel (GLA)");
    public static readonly BenchRule Delta = new("delta", MatrixKernelKind.Delta, BenchGate.None, "delta rule (DeltaNet)");
    public static readonly BenchRule GatedDelta = new("gated_delta", MatrixKernelKind.Delta, BenchGate.Scalar,
        "gated delta rule (Gated DeltaNet)");
    public static readonly BenchRule LinearComposed = new("linear_composed", MatrixKernelKind.GatedLinear, BenchGate.None,
        "linear attention, chunk form composed from libtorch operations (the fused kernel's baseline)", Composed: true);
    public static readonly BenchRule GatedScalarComposed = new("gated_linear_composed", MatrixKernelKind.GatedLinear, BenchGate.Scalar,
        "gated linear with a log-gate per head, chunk form composed from libtorch operations (the fused kernel's baseline)",
        Composed: true);
    public static readonly BenchRule DeltaComposed = new("delta_composed", MatrixKernelKind.Delta, BenchGate.None,
        "delta rule, chunk form composed from libtorch operations (the fused kernel's baseline)", Composed: true);
    public static readonly BenchRule GatedDeltaComposed = new("gated_delta_composed", MatrixKernelKind.Delta, BenchGate.Scalar,
        "gated delta rule, chunk form composed from libtorch operations (the fused kernel's baseline)", Composed: true);
    public static readonly BenchRule GatedDeltaChannel = new("gated_delta_channel", MatrixKernelKind.Delta, BenchGate.Channel,
        "gated delta rule, one log-gate per key channel (Kimi Delta Attention)");
    public static readonly BenchRule GatedDeltaErase = new("gated_delta_channel_erase", MatrixKernelKind.Delta, BenchGate.Channel,
        "generalized delta rule: erase vector b ⊙ k, written value w ⊙ v, a log-gate per key channel (Gated DeltaNet-2)",
        BenchWrite.Erase);
    public static readonly BenchRule GatedDeltaBefore = new("gated_delta_before", MatrixKernelKind.Delta, BenchGate.Scalar,
        "generalized delta rule: erase vector β p read before the decay, one log-gate per head (Comba)", BenchWrite.EraseBefore);
    public static readonly BenchRule GatedDeltaTransition = new("gated_delta_channel_transition", MatrixKernelKind.Delta,
        BenchGate.Channel, "generalized delta rule: transition vector a ≠ k, erase vector read before the decay, a log-gate per " +
        "key channel (RWKV-7's form)", BenchWrite.Transition);

    public static readonly BenchRule Mlstm = new("mlstm", MatrixKernelKind.GatedLinear, BenchGate.Scalar,
        "the mLSTM: stabiliser, exponential input gate and normaliser around the gated linear kernel (xLSTM)",
        Wrapper: BenchWrapper.Mlstm);
    public static readonly BenchRule Mamba3 = new("mamba3", MatrixKernelKind.GatedLinear, BenchGate.Scalar,
        "Mamba-3 (SISO): the trapezoid's two writes and the data-dependent rotation around the gated linear kernel",
        Wrapper: BenchWrapper.Mamba3);

    public static readonly BenchRule LogLinear = new("log_linear_mamba2", MatrixKernelKind.GatedLinear, BenchGate.Scalar,
        "log-linear attention on Mamba-2's decay: one memory per Fenwick level, ⌈log₂ T⌉ + 2 levels (FLOPs counted as the gated " +
        "linear kernel's)", Wrapper: BenchWrapper.LogLinear);
    public static readonly BenchRule LogLinearDelta = new("log_linear_gated_delta_net", MatrixKernelKind.Delta, BenchGate.Scalar,
        "log-linear attention on Gated DeltaNet's rule: one memory per Fenwick level, each taking the delta transition, " +
        "⌈log₂ T⌉ + 2 levels (FLOPs counted as the delta kernel's)", Wrapper: BenchWrapper.LogLinear);
    public static readonly BenchRule Mesa = new("mesa_net", MatrixKernelKind.GatedLinear, BenchGate.Scalar,
        $"MesaNet: {MesaCgSteps} conjugate-gradient steps, each a pass of the gated linear kernel with values β k, then the read",
        Wrapper: BenchWrapper.Mesa);

    /// <summary>The CG steps the bench gives MesaNet (fla's and Mnemo's default).</summary>
    public const int MesaCgSteps = 30;

    public static readonly BenchRule[] All =
    [
        Linear, GatedScalar, GatedChannel, Delta, GatedDelta, LinearComposed, GatedScalarComposed, DeltaComposed, GatedDeltaComposed,
        GatedDeltaChannel, GatedDeltaErase, GatedDeltaBefore, GatedDeltaTransition,
        Mlstm, Mamba3, LogLinear, LogLinearDelta, Mesa,
    ];

    /// <summary>The rules that are a kernel alone, without a rule around it (the composed baselines step as their rule does).</summary>
    public static readonly BenchRule[] Kernels = [.. All.Where(r => r.Wrapper == BenchWrapper.None && !r.Composed)];

    /// <summary>The value width the kernel runs at for head size d: the mLSTM carries its normaliser as one more column.</summary>
    public int KernelValueWidth(int d) => Wrapper == BenchWrapper.Mlstm ? d + 1 : d;

    /// <summary>Passes of the kernel per call: MesaNet's CG steps and its read; one for every other rule.</summary>
    public int KernelPasses => Wrapper == BenchWrapper.Mesa ? MesaCgSteps + 1 : 1;

    /// <summary>The kernel's name (<see cref="KernelRules.Names"/>); both gated kernels are measured with a gate per head
    /// (<c>gated_linear</c>, <c>gated_delta</c>) and per key channel (<c>gated_linear_channel</c>, <c>gated_delta_channel</c>).</summary>
    /// <param name="kernelsOnly">only the kernels themselves (<see cref="Kernels"/>): the decode bench times their steps</param>
    public static BenchRule Parse(string name, bool kernelsOnly = false)
    {
        var rules = kernelsOnly ? Kernels : All;
        var names = rules.Select(r => r.Name).ToList();
        int i = Runtime.Names.Find(names, name);
        return i >= 0 ? rules[i] : throw Runtime.Names.Unknown("rule", name, names);
    }
}

enum BenchGate { None, Scalar, Channel }

/// <summary>How a delta rule writes (docs/mechanisms.md#the-generalized-delta-rule): with β; with an erase vector read after
/// the decay; with one read before it; with an erase vector read before the decay and a transition vector a ≠ k.</summary>
enum BenchWrite { Beta, Erase, EraseBefore, Transition }

/// <summary>The rule around the kernel: none (the kernel alone), the mLSTM (<see cref="MlstmMemory"/>), Mamba-3
/// (<see cref="Mamba3Memory"/>), log-linear attention (<see cref="LogLinearMemory"/>), MesaNet (<see cref="MesaMemory"/>).</summary>
enum BenchWrapper { None, Mlstm, Mamba3, LogLinear, Mesa }

/// <summary>What <see cref="KernelBenchmark"/> measures. <see cref="Quick"/> is a smoke-test sized variant.</summary>
sealed record KernelBenchOptions
{
    public int Batch { get; init; } = 4;
    public int Heads { get; init; } = 4;
    /// <summary>Head sizes; Dk = Dv = D.</summary>
    public int[] Dims { get; init; } = [64, 128];
    public int[] Lengths { get; init; } = [1024, 4096, 16384];
    public BenchRule[] Rules { get; init; } = BenchRule.All;
    /// <summary>Deep-memory rules (<see cref="DeepMemoryRule.Named"/>), timed like the matrix rules.</summary>
    public DeepMemoryRule[] DeepRules { get; init; } = [.. DeepMemoryRule.Named.Values];
    /// <summary>Layers of the deep rules' memory MLP.</summary>
    public int Depth { get; init; } = 2;
    /// <summary>Hidden width of the deep rules' memory MLP; null = 4·D.</summary>
    public long? DeepHidden { get; init; }
    /// <summary>A deep rule's form is timed at the longest T (halving) whose estimated forward+backward autograd
    /// footprint (<see cref="DeepKernelBench.Footprint"/>) fits this, and scaled linearly to the row's T.</summary>
    public double DeepMemoryBudgetBytes { get; init; } = 4.0 * (1 << 30);
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
        if (Rules.Length + DeepRules.Length == 0) throw new MnemoException("--rules and --deep-rules name no rule between them");
        Positive("--depth", [Depth]);
        if (DeepHidden is < 1) throw new MnemoException($"the deep memory's hidden width must be positive, got {DeepHidden}");
        if (!(DeepMemoryBudgetBytes > 0))
            throw new MnemoException($"--deep-memory-gb must be positive, got {DeepMemoryBudgetBytes / (1 << 30)}");
        if (Warmup < 0) throw new MnemoException($"warm-up runs must be non-negative, got {Warmup}");
    }
}

/// <summary>One timed mode (forward, or forward+backward) of one row.</summary>
/// <param name="Ms">median time (extrapolated rows: the measured median × T / measured T)</param>
/// <param name="SamplesMs">the timed runs at the measured length (not extrapolated)</param>
/// <param name="Gflop">FLOPs of the model in <see cref="KernelFlops"/>, in 10⁹</param>
/// <param name="FractionOfFp32Peak">achieved rate / measured fp32 matmul peak</param>
sealed record Measurement(double Ms, double BestMs, double[] SamplesMs, double TokensPerSecond, double Gflop,
    double GflopPerSecond, double FractionOfFp32Peak);

/// <summary>
/// One (rule, form, D, T) result. Form is "chunk", "step" (the token-by-token step loop: the naive-loop
/// baseline), "naive" (the per-token reference) or "sdpa" (causal softmax attention, rule "attention").
/// Speed-ups are baseline time / this row's time (> 1: this row is faster); scaling is
/// t(T) / ((T / T_prev) · t(T_prev)) against the previous length measured (1 = linear in T).
/// </summary>
sealed record KernelBenchRow(
    string Rule, string Form, int Batch, int Heads, int Dk, int Dv, int T, int? ChunkSize,
    int MeasuredT, bool Extrapolated, Measurement Forward, Measurement ForwardBackward,
    double? SpeedupOverStepForward = null, double? SpeedupOverStepForwardBackward = null,
    double? SpeedupOverSdpaForward = null, double? SpeedupOverSdpaForwardBackward = null,
    int? ScalingFromT = null, double? ScalingForward = null, double? ScalingForwardBackward = null, string? Note = null);

/// <summary>Settings as reported (rule names rather than objects).</summary>
sealed record KernelBenchSettings(int Batch, int Heads, int[] Dims, int[] Lengths, string[] Rules, int ChunkSize,
    int Repeats, int Warmup, int StepMaxLength, int NaiveMaxLength, bool Attention, string Timing, string ForwardMode,
    string[] DeepRules, int Depth, string DeepHidden, double DeepMemoryBudgetGb, string DeepInputs);

sealed record KernelBenchReport(
    MachineInfo Machine, KernelBenchSettings Settings, MatmulPeakResult PeakFp32, MatmulPeakResult? PeakBf16,
    string FlopModel, KernelBenchRow[] Rows, double? LoadAverageAtEnd, double ElapsedSeconds)
{
    /// <summary>snake_case like the configs; non-ASCII (·, ², ×) written as is rather than \u escapes.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new(ConfigBinder.WriteOptions)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public void WriteJson(string path) => AtomicFile.WriteAllText(path, ToJson() + "\n");
}

/// <summary>
/// `mnemo bench kernels`: the matrix- and deep-memory kernels' speed (deep rules: <see cref="DeepKernelBench"/>) against the machine's own
/// matmul peak and against the two baselines (the step loop, causal SDPA attention), forward and forward+backward.
/// <para>Forward is timed under no_grad (inference and prefill); forward+backward runs the forward with autograd and
/// takes the gradients of sum(o·dO) + sum(S_T·dS) with respect to every input (q, k, v, g, β) by
/// <c>torch.autograd.grad</c>, with fixed random cotangents dO, dS, as the equivalence tests do.</para>
/// <para>Inputs are seeded random tensors in fp32 and fla's layout [B, T, H, D]; for the delta rules the keys are
/// L2-normalised (as their layers do) and β ∈ (0, 1); log-gates are drawn from [−0.1, −0.001] (scalar [B, T, H] or
/// per channel [B, T, H, Dk]); there is no initial state.</para>
/// </summary>
static class KernelBenchmark
{
    public const string TimingNote = "warm-up runs, then the median of the timed runs; each run in its own dispose scope, " +
        "freed after the clock stops";
    public const string ForwardNote = "forward under no_grad; forward+backward = forward with autograd + torch.autograd.grad of " +
        "sum(o·dO)+sum(S·dS) w.r.t. all inputs";
    public const string DeepInputsNote = "deep rules: fp32, q ~ N(0, 1/D), L2-normalised k, v ~ N(0, 1), theta U[0.01, 0.05], eta U[0.5, " +
        "0.9], alpha U[0, 0.01], gamma U[0, 1], delta U[0.5, 2], w0 N(0, 1/in); GELU MLP memory Dk = Dv = D; S = the final weights W_l " +
        "(dS = dW_l), gradients include w0";

    sealed record Key(string Rule, string Form, int D, int T);

    /// <summary>
    /// One kernel the bench times, a matrix rule or a deep rule: how to time a form at (D, T), the forward FLOPs of
    /// a form, the length a form is actually timed at for a row's T (the rest is scaled linearly), and why when shorter.
    /// </summary>
    sealed record Subject(string Name, Func<KernelForm, int, int, (TimingStats, TimingStats)> Measure,
        Func<KernelForm, int, int, double> Flops,
        Func<KernelForm, int, int, int> Length, Func<KernelForm, int, int, int, string?> Why);

    static IEnumerable<Subject> Subjects(KernelBenchOptions o)
    {
        // The step loop is timed up to the cap and extrapolated (its cost per token is constant).
        int Cap(KernelForm form, int t) => form == KernelForm.Step ? Math.Min(t, o.StepMaxLength) : t;
        foreach (var rule in o.Rules)
            yield return new(rule.Name, (form, d, t) => MeasureKernel(o, rule, form, d, t),
                (form, d, t) => rule.KernelPasses * (form == KernelForm.Chunk
                    ? KernelFlops.ChunkForward(rule.Kind, o.Batch, o.Heads, t, d, rule.KernelValueWidth(d), o.ChunkSize,
                        rule.Write == BenchWrite.Transition)
                    : KernelFlops.RecurrentForward(rule.Kind, o.Batch, o.Heads, t, d, rule.KernelValueWidth(d),
                        rule.Write == BenchWrite.Transition)),
                (form, _, t) => Cap(form, t), (_, _, _, _) => null);
        foreach (var rule in o.DeepRules)
        {
            int Floor(KernelForm form, int t) => Math.Min(Cap(form, t), form == KernelForm.Chunk ? o.ChunkSize : 1);
            yield return new(rule.Name, (form, d, t) => DeepKernelBench.Measure(o, rule, form, d, t),
                (form, d, t) => form == KernelForm.Chunk
                    ? KernelFlops.DeepChunkForward(rule, DeepKernelBench.Mlp(o, d), o.Batch, o.Heads, t, o.ChunkSize)
                    : KernelFlops.DeepRecurrentForward(rule, DeepKernelBench.Mlp(o, d), o.Batch, o.Heads, t),
                (form, d, t) => DeepKernelBench.Affordable(o, rule, form, d, Cap(form, t), Floor(form, t)),
                (form, d, t, measured) => measured >= Cap(form, t) ? null : string.Create(CultureInfo.InvariantCulture,
                    $"{rule.Name} {form.Name()} timed at T={measured} and scaled linearly to T={t}: forward+backward at T={Cap(form, t)} " +
                    $"would keep ≈{DeepKernelBench.Footprint(o, rule, form, d, Cap(form, t)) / (1 << 30):F2} GB for autograd (budget " +
                    $"{o.DeepMemoryBudgetBytes / (1 << 30):F2} GB, --deep-memory-gb)"));
        }
    }

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
        var subjects = Subjects(options).ToArray();
        var dims = options.Dims.Distinct().ToArray();
        var lengths = options.Lengths.Distinct().Order().ToArray();
        int smallest = lengths[0];
        // One untimed pass of the first subject's chunk form before anything is timed: the process's first large
        // allocations and libtorch's first calls otherwise land in whichever measurement comes first (its forward ran
        // slower than its own forward+backward, docs/benchmarks.md#the-generalized-delta-rules-shapes).
        if (subjects.Length > 0)
        {
            log($"warm-up ({subjects[0].Name} D={dims[0]} T={lengths[0]}, not timed) …");
            subjects[0].Measure(KernelForm.Chunk, dims[0], subjects[0].Length(KernelForm.Chunk, dims[0], lengths[0]));
        }
        foreach (int d in dims)
            foreach (int t in lengths)
            {
                if (options.Attention)
                {
                    log($"attention (sdpa) D={d} T={t} …");
                    measured[new("attention", "sdpa", d, t)] = MeasureAttention(options, d, t);
                }
                foreach (var subject in subjects)
                {
                    foreach (var form in new[] { KernelForm.Chunk, KernelForm.Step })
                    {
                        int at = subject.Length(form, d, t);
                        var key = new Key(subject.Name, form.Name(), d, at);
                        if (measured.ContainsKey(key)) continue;
                        if (subject.Why(form, d, t, at) is { } why) log("  " + why);
                        log($"{subject.Name} D={d} T={at} {(form == KernelForm.Chunk ? "chunk" : "step loop")} …");
                        measured[key] = subject.Measure(form, d, at);
                    }
                    if (t == smallest && t <= options.NaiveMaxLength && subject.Length(KernelForm.Naive, d, t) == t)
                    {
                        log($"{subject.Name} D={d} T={t} naive reference …");
                        measured[new(subject.Name, "naive", d, t)] = subject.Measure(KernelForm.Naive, d, t);
                    }
                }
            }

        // The peaks again after the timings, keeping the better (MatmulPeak).
        log("matmul peak again …");
        peak32 = peak32.Best(MatmulPeak.Measure(ScalarType.Float32, options.PeakSizes, options.PeakRepeats));
        if (peak16 is not null) peak16 = peak16.Best(MatmulPeak.Measure(ScalarType.BFloat16, options.PeakSizes, options.PeakRepeats));
        log($"  fp32 peak {peak32.GflopPerSecond:F1} GFLOP/s at n={peak32.BestN}, the better of the two");
        var rows = BuildRows(options, subjects, dims, lengths, measured, peak32.GflopPerSecond);
        var settings = new KernelBenchSettings(options.Batch, options.Heads, dims, lengths, [.. options.Rules.Select(r => r.Name)],
            options.ChunkSize, options.Repeats, options.Warmup, options.StepMaxLength, options.NaiveMaxLength, options.Attention,
            TimingNote, ForwardNote, [.. options.DeepRules.Select(r => r.Name)], options.Depth,
            options.DeepHidden?.ToString(CultureInfo.InvariantCulture) ?? "4·D", options.DeepMemoryBudgetBytes / (1 << 30),
            DeepInputsNote);
        return new KernelBenchReport(machine, settings, peak32, peak16, KernelFlops.Description, rows,
            MachineInfo.LoadAverage(), clock.Elapsed.TotalSeconds);
    }

    static KernelBenchRow[] BuildRows(KernelBenchOptions o, Subject[] subjects, int[] dims, int[] lengths,
        Dictionary<Key, (TimingStats Fwd, TimingStats FwdBwd)> measured, double peak)
    {
        var rows = new List<KernelBenchRow>();
        Measurement M(TimingStats s, int t, double forwardFlops, double factor) => new(
            s.MedianMs, s.BestMs, s.SamplesMs, o.Batch * (double)t / (s.MedianMs * 1e-3), factor * forwardFlops / 1e9,
            factor * forwardFlops / (s.MedianMs * 1e-3) / 1e9, factor * forwardFlops / (s.MedianMs * 1e-3) / 1e9 / peak);
        (Measurement, Measurement) Both((TimingStats Fwd, TimingStats FwdBwd) s, int t, double forwardFlops) =>
            (M(s.Fwd, t, forwardFlops, 1), M(s.FwdBwd, t, forwardFlops, KernelFlops.ForwardBackwardFactor));
        static double? Ratio(double? numerator, double denominator) => numerator is null ? null : numerator / denominator;

        // A form timed at a shorter length than the row's (the step cap, a deep rule's memory budget) is scaled by T / T_measured.
        (int At, (TimingStats Fwd, TimingStats FwdBwd) Times) Timed(Subject subject, KernelForm form, int d, int t)
        {
            int at = subject.Length(form, d, t);
            var raw = measured[new(subject.Name, form.Name(), d, at)];
            double stretch = (double)t / at;
            return (at, (raw.Fwd.Scaled(stretch), raw.FwdBwd.Scaled(stretch)));
        }

        foreach (var subject in subjects)
            foreach (int d in dims)
            {
                for (int i = 0; i < lengths.Length; i++)
                {
                    int t = lengths[i];
                    var (chunkT, chunk) = Timed(subject, KernelForm.Chunk, d, t);
                    var (stepT, step) = Timed(subject, KernelForm.Step, d, t);
                    var sdpa = measured.TryGetValue(new("attention", "sdpa", d, t), out var a) ? a : ((TimingStats, TimingStats)?)null;

                    var (cf, cb) = Both(chunk, t, subject.Flops(KernelForm.Chunk, d, t));
                    int? fromT = i > 0 ? lengths[i - 1] : null;
                    double? scaleF = null, scaleB = null;
                    // Scaling is only measured when both lengths were timed as they are (a scaled row would show 1.00 by construction).
                    if (fromT is int prev && chunkT == t && subject.Length(KernelForm.Chunk, d, prev) == prev)
                    {
                        var before = measured[new(subject.Name, "chunk", d, prev)];
                        double grow = (double)t / prev;
                        scaleF = chunk.Fwd.MedianMs / (grow * before.Fwd.MedianMs);
                        scaleB = chunk.FwdBwd.MedianMs / (grow * before.FwdBwd.MedianMs);
                    }
                    rows.Add(new KernelBenchRow(subject.Name, "chunk", o.Batch, o.Heads, d, d, t, o.ChunkSize, chunkT, chunkT != t, cf, cb,
                        step.Fwd.MedianMs / chunk.Fwd.MedianMs, step.FwdBwd.MedianMs / chunk.FwdBwd.MedianMs,
                        Ratio(sdpa?.Item1.MedianMs, chunk.Fwd.MedianMs), Ratio(sdpa?.Item2.MedianMs, chunk.FwdBwd.MedianMs),
                        fromT, scaleF, scaleB, subject.Why(KernelForm.Chunk, d, t, chunkT)));

                    var (sf, sb) = Both(step, t, subject.Flops(KernelForm.Step, d, t));
                    rows.Add(new KernelBenchRow(subject.Name, "step", o.Batch, o.Heads, d, d, t, null, stepT, stepT != t, sf, sb,
                        SpeedupOverSdpaForward: Ratio(sdpa?.Item1.MedianMs, step.Fwd.MedianMs),
                        SpeedupOverSdpaForwardBackward: Ratio(sdpa?.Item2.MedianMs, step.FwdBwd.MedianMs),
                        Note: subject.Why(KernelForm.Step, d, t, stepT)));

                    if (measured.TryGetValue(new(subject.Name, "naive", d, t), out var naive))
                    {
                        var (nf, nb) = Both(naive, t, subject.Flops(KernelForm.Naive, d, t));
                        rows.Add(new KernelBenchRow(subject.Name, "naive", o.Batch, o.Heads, d, d, t, null, t, false, nf, nb,
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
        public Tensor? G, Beta, Erase, Transition;
        public bool ReadBeforeDecay;
        /// <summary>The mLSTM's gate pre-activations ĩ, f̃ ([B, T, H]); Mamba-3's Δ, λ ([B, T, H]) and rates θ
        /// ([B, T, H, D/4]); log-linear attention's level scales ([B, T, H, L]); MesaNet's β ([B, T, H]) and λ ([H, D]).</summary>
        public Tensor? InputGate, ForgetGate, Dt, Trapezoid, Angles, Levels, MesaBeta, MesaLambda;
        public required Tensor DO, DS;

        public Tensor[] Leaves =>
            [.. new[] { Q, K, V, G, Beta, Erase, Transition, InputGate, ForgetGate, Dt, Trapezoid, Angles, Levels, MesaBeta, MesaLambda }
                .OfType<Tensor>()];

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
            Tensor? erase = null, transition = null;
            switch (rule.Write)
            {
                case BenchWrite.Erase:                                               // b ⊙ k, w ⊙ v
                    erase = rand([batch, t, heads, d], generator: gen) * k;
                    v = rand([batch, t, heads, d], generator: gen) * v;
                    beta = null;
                    break;
                case BenchWrite.EraseBefore:                                         // β p, β v
                    erase = beta!.unsqueeze(-1) * nn.functional.normalize(randn([batch, t, heads, d], generator: gen), p: 2, dim: -1);
                    v = beta.unsqueeze(-1) * v;
                    beta = null;
                    break;
                case BenchWrite.Transition:                                          // b = κ, a = κ ⊙ c
                    erase = nn.functional.normalize(randn([batch, t, heads, d], generator: gen), p: 2, dim: -1);
                    transition = erase * rand([batch, t, heads, d], generator: gen);
                    beta = null;
                    break;
            }
            Tensor? Optional(Tensor? y) => y is null ? null : Leaf(y);
            Tensor? inputGate = null, forgetGate = null, dt = null, trapezoid = null, angles = null;
            if (rule.Wrapper == BenchWrapper.Mlstm)                                  // ĩ ~ N(0, 1), f̃ ~ N(3, 1): xLSTM's start
                (inputGate, forgetGate, g) = (randn([batch, t, heads], generator: gen), randn([batch, t, heads], generator: gen) + 3, null);
            if (rule.Wrapper == BenchWrapper.Mamba3)                           // Δ ∈ [0.01, 0.1], λ ∈ (0, 1), θ ∈ (−π, π)
                (dt, trapezoid, angles) = (rand([batch, t, heads], generator: gen) * 0.09 + 0.01, rand([batch, t, heads], generator: gen),
                    (rand([batch, t, heads, Math.Max(1, d / 4)], generator: gen) * 2 - 1) * Math.PI);
            Tensor? levels = null, mesaBeta = null, mesaLambda = null;
            if (rule.Wrapper == BenchWrapper.LogLinear)                        // λ = softplus(N(0, 1)), enough levels for T
                levels = nn.functional.softplus(randn([batch, t, heads, (int)Math.Ceiling(Math.Log2(t)) + 2], generator: gen));
            // MesaNet: unit q and k as its layer makes them, β ∈ (0, 1), λ ∈ [0.25, 1.25]
            if (rule.Wrapper == BenchWrapper.Mesa)
            {
                (q, k) = (nn.functional.normalize(q, p: 2, dim: -1), nn.functional.normalize(k, p: 2, dim: -1));
                (mesaBeta, mesaLambda) = (rand([batch, t, heads], generator: gen), rand([heads, d], generator: gen) + 0.25);
            }
            var x = new Inputs
            {
                Q = Leaf(q), K = Leaf(k), V = Leaf(v), G = Optional(g), Beta = Optional(beta), Erase = Optional(erase),
                Transition = Optional(transition), ReadBeforeDecay = rule.Write is BenchWrite.EraseBefore or BenchWrite.Transition,
                InputGate = Optional(inputGate), ForgetGate = Optional(forgetGate), Dt = Optional(dt), Trapezoid = Optional(trapezoid),
                Angles = Optional(angles), Levels = Optional(levels), MesaBeta = Optional(mesaBeta), MesaLambda = Optional(mesaLambda),
                DO = randn([batch, t, heads, d], generator: gen).MoveToOuterDisposeScope(),
                DS = randn([batch, heads, d, d], generator: gen).MoveToOuterDisposeScope(),
            };
            return x;
        }

        static Tensor Leaf(Tensor x) => x.detach().requires_grad_(true).MoveToOuterDisposeScope();

        public KernelInputs Kernel => new(Q, K, V, G, Beta, null, Erase, Transition, ReadBeforeDecay);

        /// <summary>The rule in one form: its output and final memory (the mLSTM's C, Mamba-3's S).</summary>
        public (Tensor O, Tensor State) Run(BenchRule rule, KernelForm form, int chunkSize)
        {
            switch (rule.Wrapper)
            {
                case BenchWrapper.Mlstm:
                    var (h, c) = MlstmMemory.Run(form, new MlstmInputs(Q, K, V, InputGate!, ForgetGate!), chunkSize);
                    return (h, c.C);
                case BenchWrapper.Mamba3:
                    var (y, s) = Mamba3Memory.Run(form, new Mamba3Inputs(Q, K, V, G!, Dt!, Trapezoid!, Angles!), chunkSize);
                    return (y, s.S);
                case BenchWrapper.LogLinear:                                   // the state: the levels summed
                    var (l, levels) = LogLinearMemory.Run(form, new LogLinearInputs(Q, K, V, G!, Levels!, Beta: Beta), chunkSize);
                    return (l, levels.S.sum([2]));
                case BenchWrapper.Mesa:                                        // the state: G
                    var mesaInputs = new MesaInputs(Q, K, V, G!, MesaBeta!, MesaLambda!);
                    var (m, mesa) = MesaMemory.Run(form, mesaInputs, BenchRule.MesaCgSteps, chunkSize);
                    return (m, mesa.G);
                default:
                    if (!rule.Composed || form != KernelForm.Chunk) return MatrixKernels.Run(rule.Kind, form, Kernel, chunkSize);
                    return rule.Kind == MatrixKernelKind.Delta
                        ? DeltaKernel.ComposedChunk(Q, K, V, G, Beta, null, chunkSize, Erase, Transition, ReadBeforeDecay)
                        : GatedLinearKernel.ComposedChunk(Q, K, V, G, null, chunkSize);
            }
        }

        public void Dispose()
        {
            foreach (var t in new[] { Q, K, V, G, Beta, Erase, Transition, InputGate, ForgetGate, Dt, Trapezoid, Angles, Levels, MesaBeta,
                         MesaLambda, DO, DS })
                t?.Dispose();
        }
    }

    /// <summary>Times one rule in one form at one shape: forward (no_grad) and forward+backward.</summary>
    public static (TimingStats Forward, TimingStats ForwardBackward) MeasureKernel(KernelBenchOptions o, BenchRule rule, KernelForm form,
        int d, int t)
    {
        using var x = Inputs.Create(rule, o.Batch, o.Heads, d, t, o.Seed);
        var forward = Timing.Measure(() =>
        {
            using var _ = no_grad();
            x.Run(rule, form, o.ChunkSize);
        }, o.Warmup, o.Repeats);
        var both = Timing.Measure(() =>
        {
            var (y, s) = x.Run(rule, form, o.ChunkSize);
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
