using Mnemo.IO;
using Mnemo.Memory.Deep;
using Rules = Mnemo.Memory.Deep.Rules;

namespace Mnemo.Layers;

/// <summary>How a deep memory's momentum and forgetting gates see the input: per token, or the running mean over the chunk.</summary>
public enum GatePooling { Token, Chunk }

/// <summary>A deep memory's learner: the rule's own, or another point on Miras' learner axis.</summary>
public enum MemoryLearnerKind
{
    /// <summary>The named rule's learner (momentum for titans and omeganet, Muon for atlas, else gradient descent).</summary>
    Rule,
    GradientDescent,
    Momentum,
    Muon,
}

/// <summary>A deep memory's attentional bias (Miras' objective axis): the rule's own, or another.</summary>
public enum MemoryObjectiveKind
{
    /// <summary>The named rule's objective (ℓ2 for titans, memora, omeganet and atlas, ℓ3 for moneta, Huber for yaad).</summary>
    Rule,
    /// <summary>‖y − v‖² (Titans).</summary>
    L2,
    /// <summary>Σ((y − v)² + ε)^{3/2}, the smoothed ℓ3 bias (Moneta).</summary>
    L3,
    /// <summary>Huber on ‖y − v‖ with a learned threshold (Yaad).</summary>
    Huber,
}

/// <summary>A deep memory's retention (Miras' retention axis): the rule's own, or another.</summary>
public enum MemoryRetentionKind
{
    /// <summary>The named rule's retention (decay for titans, yaad, omeganet and atlas, ℓ4 for moneta, softmax for memora).</summary>
    Rule,
    /// <summary>W_t = (1 − α_t) W_{t−1} + update (Titans).</summary>
    Decay,
    /// <summary>W = A / ‖A‖₄² of the decayed raw state A (Moneta).</summary>
    L4,
    /// <summary>Rows of W are softmaxes of raw logits (Memora).</summary>
    Softmax,
}

/// <summary>
/// model.deep: the deep, test-time-trained memories (docs/deep-memories.md; titans, moneta, yaad, memora, omeganet,
/// atlas, and the memory of Titans' architectures).
/// </summary>
public sealed record DeepMemoryConfig
{
    [Help("MLP layers of the memory (1 = a matrix)"), Range(1, 8)] public int Depth { get; init; } = 2;
    [Help("hidden width as a multiple of the key size per head"), Range(0.25, 16)]
    public double Expansion { get; init; } = 4;
    [Help("activation between memory layers, gelu or silu")]
    public MemoryActivation Activation { get; init; } = MemoryActivation.Gelu;
    [Help(
        "M(x) = x + LN(mlp(x)), the TTT / titans-pytorch wrapper (needs equal key and " +
        "value sizes and no feature map); off (default) = the Titans paper's plain MLP. The wrapper's " +
        "read is scale-invariant in the last layer, so its effective inner step is θ/‖W_L‖², 316× too " +
        "large at the zero initial output layer and frozen after (docs/deep-memories.md); it learned " +
        "MQAR slower and worse")]
    public bool ResidualNorm { get; init; }
    [Help(
        "tokens per chunk; every gradient in a chunk is taken at the chunk-start weights (part of the model). Keep it " +
        "at most half the training length, so training crosses a chunk boundary (docs/deep-memories.md#2f-chunk-size)"),
     Range(1, 1024)]
    public int ChunkSize { get; init; } = 32;
    [Help("the learning rate gate is sigmoid(.)·max_lr"), Range(0, 100)]
    public double MaxLr { get; init; } = 0.5;
    [Help(
        "initial bias of the forgetting gate α = σ(forget_proj x); -4 (α ≈ 0.018 per token keeps ~0.3 of a " +
        "write 64 tokens later), lower forgets less at the start of training"), Range(-30, 30)]
    public double ForgetBias { get; init; } = -4;
    [Help("momentum/forget gates per token, or from the running mean of the chunk (Titans)")]
    public GatePooling GatePooling { get; init; } = GatePooling.Token;
    [Help("soft clamp of each token's inner gradient norm per memory layer (c·tanh(‖g‖/c)); 0 = off"), Range(0, 1e6)]
    public double GradClip { get; init; }
    [Help("Omega window in tokens; 0 = the rule's own (4 for omeganet and atlas, 1 otherwise)"), Range(0, 1024)]
    public int Window { get; init; }
    [Help(
        "scale each token's inner gradient by ‖δ_L‖² / Σ_l ‖a_l‖²‖δ_l‖² (normalised LMS " +
        "for the whole memory: to first order the written key's read moves by θ·δ_L, as a unit key's " +
        "read does under the delta rule), so a growing memory cannot make the inner step overshoot; off " +
        "= plain gradient steps")]
    public bool NormalizedStep { get; init; } = true;
    [Help("learner: rule (the rule's own), gradient_descent, momentum or muon (Newton–Schulz on the momentum)")]
    public MemoryLearnerKind Learner { get; init; } = MemoryLearnerKind.Rule;
    [Help("attentional bias: rule (the rule's own), l2, l3 (Moneta's) or huber (Yaad's); swaps one Miras axis")]
    public MemoryObjectiveKind Objective { get; init; } = MemoryObjectiveKind.Rule;
    [Help("retention: rule (the rule's own), decay, l4 (Moneta's A/‖A‖₄²) or softmax (Memora's); swaps one Miras axis")]
    public MemoryRetentionKind Retention { get; init; } = MemoryRetentionKind.Rule;
    [Help("feature map on keys and queries: none, polynomial or taylor (degree 2, ATLAS)")]
    public MemoryFeatureMapKind FeatureMap { get; init; } = MemoryFeatureMapKind.None;

    /// <summary>A named deep rule with these overrides: Omega window, objective, retention, learner and gradient clamp.</summary>
    public DeepMemoryRule Configure(DeepMemoryRule rule)
    {
        var windowed = Window > 0 ? rule.WithWindow(Window) : rule;
        Learner learner = Learner switch
        {
            MemoryLearnerKind.GradientDescent => new GradientDescent(),
            MemoryLearnerKind.Momentum => new MomentumDescent(),
            MemoryLearnerKind.Muon => new Muon(),
            _ => rule.Learner,
        };
        Objective objective = Objective switch
        {
            MemoryObjectiveKind.L2 => Rules.Titans.Rule.Objective,
            MemoryObjectiveKind.L3 => Rules.Moneta.Rule.Objective,
            MemoryObjectiveKind.Huber => Rules.Yaad.Rule.Objective,
            _ => rule.Objective,
        };
        Retention retention = Retention switch
        {
            MemoryRetentionKind.Decay => Rules.Titans.Rule.Retention,
            MemoryRetentionKind.L4 => Rules.Moneta.Rule.Retention,
            MemoryRetentionKind.Softmax => Rules.Memora.Rule.Retention,
            _ => rule.Retention,
        };
        return windowed with
        {
            Objective = objective,
            Retention = retention,
            Learner = learner,
            GradientClip = GradClip,
            NormalizedStep = NormalizedStep,
        };
    }

    /// <summary>The memory MLP per head, for keys of <paramref name="keyDim"/> (before φ) and values of
    /// <paramref name="valueDim"/>.</summary>
    public MemoryMlp Mlp(long keyDim, long valueDim) => new(MemoryFeatureMap.Width(FeatureMap, keyDim), valueDim, Depth,
        (long)Math.Round(Expansion * keyDim), Activation, ResidualNorm);
}
