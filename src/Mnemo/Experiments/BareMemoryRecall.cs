using Mnemo.Memory.Deep;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>A deep memory's architecture and inner step, as the bare-memory probe compares them.</summary>
/// <param name="ZeroOutput">The last layer starts at zero, as the layers initialise it (else N(0, 1/in) like the others).</param>
/// <param name="Rule">The named rule whose objective and retention the memory uses (its learner is replaced by plain
/// gradient descent, its window by 1); ℓ2 with plain decay (Titans' objective) by default.</param>
/// <param name="RetentionOf">The named rule whose retention is used instead of <paramref name="Rule"/>'s.</param>
/// <param name="FanInInit">Layers start as under plain decay whatever the retention: hidden N(0, 1/in), output per
/// <paramref name="ZeroOutput"/> (else the retention's own scale and start).</param>
public sealed record BareMemoryVariant(string Name, int Depth, bool ResidualNorm, bool NormalizedStep, bool ZeroOutput = true,
    string Rule = "titans", string? RetentionOf = null, bool FanInInit = false)
{
    public static IReadOnlyList<BareMemoryVariant> All { get; } =
    [
        new("delta_rule", 1, false, false),
        new("mlp", 2, false, false),
        new("mlp_normalized", 2, false, true),
        new("mlp_layernorm", 2, true, false),
        new("mlp_layernorm_random_init", 2, true, false, ZeroOutput: false),
        new("moneta", 2, false, true, Rule: "moneta"),
        new("moneta_objective", 2, false, true, Rule: "moneta", RetentionOf: "titans"),
        new("moneta_retention", 2, false, true, RetentionOf: "moneta"),
        new("moneta_zero_start", 2, false, true, Rule: "moneta", FanInInit: true),
        new("memora", 2, false, true, Rule: "memora"),
        new("memora_fan_in_init", 2, false, true, Rule: "memora", FanInInit: true),
    ];
}

/// <summary>What the probe writes: pairs and filler per sequence, widths, learning rates and chunk sizes.</summary>
public sealed record BareMemorySettings
{
    public IReadOnlyList<BareMemoryVariant> Variants { get; init; } = BareMemoryVariant.All;
    public double[] Thetas { get; init; } = [0.05, 0.15, 0.3, 0.5];
    public int[] ChunkSizes { get; init; } = [1, 16];
    public int Pairs { get; init; } = 8;
    /// <summary>Writes after the pairs, each at θ·<see cref="FillerThetaRatio"/> (a model's gates would mute them).</summary>
    public int Filler { get; init; } = 40;
    public double FillerThetaRatio { get; init; } = 0.1;
    /// <summary>Standard deviation of the values: a fresh model's values are small (its projections start at
    /// N(0, 0.02²)), which matters to rules whose step or map is not linear in the value's scale (Moneta's).</summary>
    public double ValueStd { get; init; } = 1;
    public int Dim { get; init; } = 32;
    public double Expansion { get; init; } = 4;
    public int Sequences { get; init; } = 256;
    public int Seed { get; init; } = 7;
}

/// <param name="RecallPerPair">Recall of the pair written i-th, over the sequences.</param>
/// <param name="LastLayerNorm">‖W_L‖_F of the final effective weights (after the retention's map), mean over sequences: how
/// far the writes grew the memory.</param>
public sealed record BareMemoryResult(string Variant, double Theta, int ChunkSize, double Recall, double[] RecallPerPair,
    double RelativeError, double LastLayerNorm);

/// <summary>
/// The memory alone, no model around it: per sequence, write P random (unit key, N(0, σ²I) value) pairs at inner
/// learning rate θ, then F random filler pairs at θ·r, with plain gradient descent on the variant's objective
/// (‖M(k) − v‖² unless it names a Miras rule; no forgetting, no momentum), read every pair's key with the final effective
/// weights, and count a pair recalled when its read is closer in cosine to its own value than to any other pair's. It
/// isolates what an architecture and its inner step can store in context with fixed gates, which outer training then
/// has to work with: the delta rule stores every pair at any θ ≤ 0.5; a 2-layer MLP with plain steps overshoots at
/// large θ; with the residual LayerNorm and a zero output layer, the first write sees LN's 1/√ε gradient at f = 0 and
/// later writes are frozen (the effective step of a scale-invariant read is θ/‖W‖²). Moneta's ℓ3 objective and ℓ4
/// map, and Memora's softmax rows, are probed apart (docs/deep-memories.md, 2e). Every sequence draws from one seeded
/// generator; the same seed gives the same table.
/// </summary>
public static class BareMemoryRecall
{
    public static List<BareMemoryResult> Run(BareMemorySettings s, Action<BareMemoryResult>? progress = null)
    {
        var results = new List<BareMemoryResult>();
        foreach (var variant in s.Variants)
            foreach (double theta in s.Thetas)
                foreach (int chunk in s.ChunkSizes)
                {
                    var r = Probe(s, variant, theta, chunk);
                    results.Add(r);
                    progress?.Invoke(r);
                }
        return results;
    }

    static BareMemoryResult Probe(BareMemorySettings s, BareMemoryVariant variant, double theta, int chunk)
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator((ulong)s.Seed);
        long b = s.Sequences, p = s.Pairs, t = s.Pairs + s.Filler, d = s.Dim;
        var mlp = new MemoryMlp(d, d, variant.Depth, (long)Math.Round(s.Expansion * d), MemoryActivation.Gelu, variant.ResidualNorm);
        var rule = new DeepMemoryRule("bare", DeepMemoryRule.Named[variant.Rule].Objective,
            DeepMemoryRule.Named[variant.RetentionOf ?? variant.Rule].Retention, new GradientDescent(),
            NormalizedStep: variant.NormalizedStep);
        var keys = nn.functional.normalize(randn([b, t, 1, d], generator: gen), p: 2, dim: -1);    // [B, T, 1, D], H = 1
        var values = randn([b, t, 1, d], generator: gen) * s.ValueStd;
        var w0 = DeepKernels.InitialWeights(mlp, 1, ScalarType.Float32, gen, zeroOutput: variant.ZeroOutput,
            retention: variant.FanInInit ? null : rule.Retention);
        var thetas = cat([full([b, p, 1], theta), full([b, s.Filler, 1], theta * s.FillerThetaRatio)], 1);
        DeepState state;
        using (no_grad()) (_, state) = DeepKernel.Chunk(rule, mlp, new DeepInputs(keys, keys, values, thetas, W0: w0), chunk);

        var k = keys.narrow(1, 0, p).squeeze(2);                                                    // [B, P, D]
        var v = values.narrow(1, 0, p).squeeze(2);
        var effective = state.Weights.Select(rule.Retention.Effective).ToArray();
        var read = mlp.Apply(effective, k.unsqueeze(1)).squeeze(1);                                // [B, P, D]
        var cosine = nn.functional.normalize(read, p: 2, dim: -1).matmul(nn.functional.normalize(v, p: 2, dim: -1).transpose(1, 2));
        // A read that is not finite (the memory diverged) recalls nothing.
        var recalled = (cosine.argmax(-1).eq(arange(p).unsqueeze(0)) & read.isfinite().all(-1)).to(float32);   // [B, P]
        var perPair = recalled.mean([0]).data<float>().Select(x => (double)x).ToArray();
        double error = ((read - v).square().sum(-1) / v.square().sum(-1)).mean().item<float>();
        double norm = effective[^1].flatten(2).square().sum(-1).sqrt().mean().item<float>();
        return new BareMemoryResult(variant.Name, theta, chunk, perPair.Average(), perPair, error, norm);
    }
}
