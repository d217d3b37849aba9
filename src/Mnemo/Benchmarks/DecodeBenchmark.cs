using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>What <see cref="DecodeBenchmark"/> measures.</summary>
sealed record DecodeBenchOptions
{
    public int Batch { get; init; } = 1;
    public int Heads { get; init; } = 4;
    /// <summary>Head size; Dk = Dv = D.</summary>
    public int Dim { get; init; } = 64;
    /// <summary>Context lengths: tokens already seen when the measured tokens are decoded.</summary>
    public long[] Contexts { get; init; } = [1024, 16384, 262144, 1048576];
    [JsonIgnore] public BenchRule[] Rules { get; init; } = BenchRule.Kernels;
    /// <summary>The rules by name (what the JSON report shows).</summary>
    public string[] RuleNames => [.. Rules.Select(r => r.Name)];
    /// <summary>Tokens decoded per measurement (fewer at long attention contexts: see <see cref="DecodeBenchmark.TokensAt"/>).</summary>
    public int Tokens { get; init; } = 100;
    public int Warmup { get; init; } = 3;
    public bool Attention { get; init; } = true;
    public int Seed { get; init; } = 1234;

    public static DecodeBenchOptions Quick => new() { Heads = 2, Dim = 16, Contexts = [256, 1024], Tokens = 5, Warmup = 1 };

    public void Validate()
    {
        if (Batch < 1 || Heads < 1 || Dim < 1)
            throw new MnemoException($"batch, heads and dim must be positive, got {Batch}, {Heads}, {Dim}");
        if (Contexts.Length == 0 || Contexts.Any(c => c < 1)) throw new MnemoException("--contexts needs positive lengths");
        if (Tokens < 1) throw new MnemoException($"--tokens must be at least 1, got {Tokens}");
        if (Warmup < 0) throw new MnemoException($"warm-up tokens must be non-negative, got {Warmup}");
        if (Rules.Length == 0 && !Attention) throw new MnemoException("nothing to measure: no rules and no attention");
    }
}

/// <summary>
/// One (kind, context) result. Kind is a rule name (its step form: a constant-size state) or "attention" (a KV
/// cache of the context's length).
/// </summary>
/// <param name="MsPerToken">median time of one decode step</param>
/// <param name="StateBytes">the memory the step reads: the state B·H·Dk·Dv·4, or the cache 2·B·H·L·D·4</param>
/// <param name="WorkingSetBytes">the whole process's resident memory with that state or cache alive</param>
sealed record DecodeBenchRow(string Kind, long Context, int Tokens, double MsPerToken, double BestMsPerToken,
    double TokensPerSecond, long StateBytes, long WorkingSetBytes);

sealed record DecodeBenchReport(MachineInfo Machine, DecodeBenchOptions Settings, string Method, DecodeBenchRow[] Rows,
    double? LoadAverageAtEnd, double ElapsedSeconds)
{
    public string ToJson() => JsonSerializer.Serialize(this, KernelBenchReport.JsonOptions);

    public void WriteJson(string path) => AtomicFile.WriteAllText(path, ToJson() + "\n");
}

/// <summary>
/// `mnemo bench decode`: a kernel-level decode benchmark — the per-token latency of one streaming step, without a
/// model around it (no projections, norms or MLPs). A matrix-memory step, as decoding runs it (<see cref="FusedStep"/>)
/// and composed from libtorch operations (<see cref="GatedLinearKernel.Step"/>, <see cref="DeltaKernel.Step"/>), reads
/// and writes a state of constant size, so its cost does not depend on how many
/// tokens came before; each context is measured anyway, from a random state of that size. Attention's step attends
/// from one query over a KV cache holding the whole context: q·Kᵀ, softmax, ·V, after writing the token's k and v
/// into a preallocated cache (no reallocation per token). fp32, under no_grad, each token in its own dispose scope.
/// </summary>
static class DecodeBenchmark
{
    public const string MethodNote =
        "kernel-level decode: one step of the memory kernel, fused as decoding runs it and composed of libtorch operations " +
        "(or one attention query over a KV cache of the context's length) per token, no model around it, inputs drawn " +
        "before timing; fp32, no_grad; warm-up tokens, then the median over the timed tokens";

    /// <summary>Timed tokens at one context: attention at long contexts reads gigabytes per token, so fewer.</summary>
    public static int TokensAt(DecodeBenchOptions o, string kind, long context) =>
        kind != "attention" ? o.Tokens : (int)Math.Clamp(o.Tokens * 16384.0 / Math.Max(context, 16384), Math.Min(o.Tokens, 5), o.Tokens);

    public static DecodeBenchReport Run(DecodeBenchOptions o, Action<string>? log = null)
    {
        o.Validate();
        log ??= _ => { };
        var clock = Stopwatch.StartNew();
        var machine = MachineInfo.Capture();
        var rows = new List<DecodeBenchRow>();
        using var _ = no_grad();
        foreach (long context in o.Contexts.Distinct().Order())
        {
            foreach (var rule in o.Rules)
            {
                log($"{rule.Name} step, context {context} …");
                rows.Add(MeasureRule(o, rule, context, fused: true));
                rows.Add(MeasureRule(o, rule, context, fused: false));
            }
            if (o.Attention)
            {
                log($"attention KV-cache step, context {context} …");
                rows.Add(MeasureAttention(o, context));
            }
        }
        return new DecodeBenchReport(machine, o, MethodNote, [.. rows], MachineInfo.LoadAverage(), clock.Elapsed.TotalSeconds);
    }

    static (double Median, double Best) PerToken(int warmup, int tokens, Action<int> step)
    {
        for (int i = 0; i < warmup; i++)
        {
            using var quiet = GcQuiet.Enter();                                   // see GcQuiet: no GC mid-call
            step(i);
        }
        var samples = new double[tokens];
        for (int i = 0; i < tokens; i++)
        {
            using var quiet = GcQuiet.Enter();                                         // opened (and its collection run) untimed
            long start = Stopwatch.GetTimestamp();
            step(warmup + i);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(samples);
        double median = tokens % 2 == 1 ? samples[tokens / 2] : (samples[tokens / 2 - 1] + samples[tokens / 2]) / 2;
        return (median, samples[0]);
    }

    /// <summary>
    /// One rule's step, <paramref name="fused"/> as decoding runs it (<see cref="FusedStep"/>, where it applies) or
    /// composed from libtorch operations (the step form the tests take as the reference). The inputs of every token are
    /// drawn before the clock starts.
    /// </summary>
    static DecodeBenchRow MeasureRule(DecodeBenchOptions o, BenchRule rule, long context, bool fused)
    {
        int b = o.Batch, h = o.Heads, d = o.Dim;
        using var measurement = NewDisposeScope();                       // frees the state, the inputs and the temporaries
        using var gen = new Generator((ulong)(o.Seed + context));
        var state = randn([b, h, d, d], generator: gen) * 0.1;       // what the context left behind: its size is all that matters
        int tokens = TokensAt(o, rule.Name, context);
        var inputs = Enumerable.Range(0, o.Warmup + tokens).Select(_ => (
            Q: randn([b, h, d], generator: gen) * Math.Pow(d, -0.5),
            K: nn.functional.normalize(randn([b, h, d], generator: gen), p: 2, dim: -1),
            V: randn([b, h, d], generator: gen),
            G: rule.Gate switch
            {
                BenchGate.Scalar => rand([b, h], generator: gen) * -0.099 - 0.001,
                BenchGate.Channel => rand([b, h, d], generator: gen) * -0.099 - 0.001,
                _ => (Tensor?)null,
            },
            Beta: rand([b, h], generator: gen))).ToArray();
        bool delta = rule.Kind == MatrixKernelKind.Delta;
        var (median, best) = PerToken(o.Warmup, tokens, token =>
        {
            using var scope = NewDisposeScope();
            var (q, k, v, g, beta) = inputs[token];
            bool fast = fused && FusedStep.Applies(q, k, v, g, delta ? beta : null, state);
            var (_, next) = (delta, fast) switch
            {
                (true, true) => FusedStep.Delta(q, k, v, g, beta, state),
                (true, false) => DeltaKernel.Step(q, k, v, g, beta, state),
                (false, true) => FusedStep.GatedLinear(q, k, v, g, state),
                _ => GatedLinearKernel.Step(q, k, v, g, state),
            };
            next.MoveToOuterDisposeScope();
            state.Dispose();
            state = next;
        });
        long rss = CurrentWorkingSet();
        string name = fused ? rule.Name : rule.Name + ComposedSuffix;
        return new DecodeBenchRow(name, context, tokens, median, best, 1000.0 / median, 4L * b * h * d * d, rss);
    }

    /// <summary>The suffix of a rule's row timed as the composed step.</summary>
    public const string ComposedSuffix = " (composed)";

    static DecodeBenchRow MeasureAttention(DecodeBenchOptions o, long context)
    {
        int b = o.Batch, h = o.Heads, d = o.Dim;
        int tokens = TokensAt(o, "attention", context);
        long capacity = context + o.Warmup + tokens;
        using var measurement = NewDisposeScope();
        using var gen = new Generator((ulong)(o.Seed + 17 + context));
        // The cache holds the context plus room for the tokens about to be decoded (a real decoder preallocates too).
        using var keys = empty([b, h, capacity, d]);
        using var values = empty([b, h, capacity, d]);
        using (var fill = NewDisposeScope())
        {
            // Filled in slices so building a 1M-token cache never needs a second full-size temporary.
            long slice = 65536;
            for (long start = 0; start < context; start += slice)
            {
                long n = Math.Min(slice, context - start);
                keys.narrow(2, start, n).copy_(randn([b, h, n, d], generator: gen));
                values.narrow(2, start, n).copy_(randn([b, h, n, d], generator: gen));
            }
        }
        double scale = 1 / Math.Sqrt(d);
        var (median, best) = PerToken(o.Warmup, tokens, i =>
        {
            using var scope = NewDisposeScope();
            long length = context + i;                                     // tokens in the cache before this one
            var q = randn([b, h, 1, d], generator: gen);
            keys.narrow(2, length, 1).copy_(randn([b, h, 1, d], generator: gen));
            values.narrow(2, length, 1).copy_(randn([b, h, 1, d], generator: gen));
            var k = keys.narrow(2, 0, length + 1);
            var v = values.narrow(2, 0, length + 1);
            var weights = (q.matmul(k.transpose(-1, -2)) * scale).softmax(-1); // [B, H, 1, L+1]
            weights.matmul(v);                                             // [B, H, 1, D]
        });
        long rss = CurrentWorkingSet();
        return new DecodeBenchRow("attention", context, tokens, median, best, 1000.0 / median, 2L * 4 * b * h * context * d, rss);
    }

    static long CurrentWorkingSet()
    {
        using var p = Process.GetCurrentProcess();
        return p.WorkingSet64;
    }
}
