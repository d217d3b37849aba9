using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;

namespace Mnemo.Layers;

/// <summary>Token mixers: attention, the matrix memories (docs/mechanisms.md#the-two-matrix-kernels), the mixture of
/// memories (docs/mechanisms.md#mixture-of-memories), the deep, test-time-trained memories (docs/deep-memories.md,
/// named after their rules in Memory/Deep/Rules) and Titans' three architectures around its memory
/// (docs/mechanisms.md#titans-architectures: memory as context, gate, layer).</summary>
public enum MixerKind
{
    Attention, LinearAttention, Retnet, Gla, Mamba2, DeltaNet, GatedDeltaNet, Mom, Titans, Moneta, Yaad, Memora,
    Omeganet, Atlas, TitansMac, TitansMag, TitansMal
}

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

/// <summary>The update rule of each memory in a mixture of memories.</summary>
public enum MomRule
{
    /// <summary>Gated DeltaNet (the paper's choice): decay from a_proj, A_log, dt_bias; β from b_proj.</summary>
    GatedDeltaNet,
    /// <summary>DeltaNet: β from b_proj, no decay.</summary>
    DeltaNet,
    /// <summary>Gated linear attention with Gated DeltaNet's scalar decay per head; no β.</summary>
    GatedLinear,
}

public enum PositionKind { Rope, Learned, None }

/// <summary>Shape of the language model. Names follow fla's configs where one exists.</summary>
public sealed record ModelConfig : IValidatedConfig
{
    [Help("token mixer of every layer")] public MixerKind Mixer { get; init; } = MixerKind.Attention;
    [Help("per-layer mixers for hybrids, e.g. [\"gated_delta_net\", \"attention\"]; empty = mixer everywhere")]
    public MixerKind[] LayerMixers { get; init; } = [];
    [Help("vocabulary size; 0 = take it from the task"), Range(0, 1 << 20)] public int VocabSize { get; init; }
    [Help("model width"), Range(1, 16384)] public int DModel { get; init; } = 64;
    [Help("number of blocks"), Range(1, 256)] public int NumLayers { get; init; } = 2;
    [Help("attention heads"), Range(1, 1024)] public int NumHeads { get; init; } = 2;
    [Help("positions: rope, learned (absolute) or none")] public PositionKind Positions { get; init; } = PositionKind.Rope;
    [Help("longest sequence for learned positions / rotary tables"), Range(1, 1 << 24)] public int MaxPositions { get; init; } = 2048;
    [Help("sliding-window size in tokens; 0 = full causal attention"), Range(0, 1 << 24)] public int Window { get; init; }
    [Help("depthwise causal short convolution on q, k, v (Zoology/fla style)")] public bool ShortConv { get; init; } = true;
    [Help("short convolution kernel size"), Range(1, 64)] public int ConvSize { get; init; } = 4;
    [Help("memory key width as a multiple of d_model (split over heads)"), Range(0.01, 16)] public double ExpandK { get; init; } = 1;
    [Help("memory value width as a multiple of d_model (split over heads)"), Range(0.01, 16)] public double ExpandV { get; init; } = 1;
    [Help("linear attention feature map: identity, elu_p1, relu or taylor (Based's 2nd-order expansion)")]
    public FeatureMapKind FeatureMap { get; init; } = FeatureMapKind.EluP1;
    [Help("linear attention: divide by the normaliser φ(q)·Σφ(k) (else only the output RMSNorm)")] public bool Normalize { get; init; }
    [Help("chunk size of the chunkwise-parallel memory kernels"), Range(1, 1024)] public int ChunkSize { get; init; } = 64;
    [Help(
        "memory mixers: gate the read by silu(g_proj x) before o_proj; unset = the mechanism's own choice (on for " +
        "gated_delta_net, gla, retnet and the deep memories, off for delta_net and linear_attention). On MQAR at " +
        "600 steps the gate is what keeps Gated DeltaNet near chance (docs/deep-memories.md)")]
    public bool? OutputGate { get; init; }
    [Help("mamba2, gated_delta_net, mom: smallest initial step dt of the decay g = −A·softplus(a + dt_bias) " +
        "(dt log-uniform in [dt_min, dt_max], Mamba-2's initialisation)"), Range(1e-8, 10)]
    public double DtMin { get; init; } = 1e-3;
    [Help("mamba2, gated_delta_net, mom: largest initial step dt (with A ~ U(1, 16), dt_max 0.1 forgets most of a " +
        "write within ~10 tokens at the start of training)"), Range(1e-8, 10)]
    public double DtMax { get; init; } = 0.1;
    [Help("mom: memories per layer"), Range(1, 64)] public int NumMemories { get; init; } = 4;
    [Help("mom: memories each token is routed to (at most num_memories)"), Range(1, 64)] public int TopK { get; init; } = 2;
    [Help("mom: add a memory that every token writes to")] public bool SharedMemory { get; init; } = true;
    [Help("mom: update rule of every memory: gated_delta_net, delta_net or gated_linear")]
    public MomRule MomRule { get; init; } = MomRule.GatedDeltaNet;
    [Help("mom: weight of the router's load-balancing loss in training"), Range(0, 100)]
    public double RouterAuxLossCoef { get; init; } = 0.01;
    [Help("deep memories: MLP layers of the memory (1 = a matrix)"), Range(1, 8)] public int MemoryDepth { get; init; } = 2;
    [Help("deep memories: hidden width as a multiple of the key size per head"), Range(0.25, 16)]
    public double MemoryExpansion { get; init; } = 4;
    [Help("deep memories: activation between memory layers, gelu or silu")]
    public MemoryActivation MemoryActivation { get; init; } = MemoryActivation.Gelu;
    [Help(
        "deep memories: M(x) = x + LN(mlp(x)), the TTT / titans-pytorch wrapper (needs equal key and " +
        "value sizes and no feature map); off (default) = the Titans paper's plain MLP. The wrapper's " +
        "read is scale-invariant in the last layer, so its effective inner step is θ/‖W_L‖², 316× too " +
        "large at the zero initial output layer and frozen after (docs/deep-memories.md); it learned " +
        "MQAR slower and worse")]
    public bool MemoryResidualNorm { get; init; }
    [Help("deep memories: tokens per chunk; every gradient in a chunk is taken at the chunk-start weights (part of the model)"),
        Range(1, 1024)]
    public int MemoryChunkSize { get; init; } = 16;
    [Help("deep memories: the learning rate gate is sigmoid(.)·memory_max_lr"), Range(0, 100)]
    public double MemoryMaxLr { get; init; } = 0.5;
    [Help(
        "deep memories: initial bias of the forgetting gate α = σ(forget_proj x); -4 (α ≈ 0.018 per token keeps ~0.3 of a " +
        "write 64 tokens later), lower forgets less at the start of training"), Range(-30, 30)]
    public double MemoryForgetBias { get; init; } = -4;
    [Help("deep memories: momentum/forget gates per token, or from the running mean of the chunk (Titans)")]
    public GatePooling MemoryGatePooling { get; init; } = GatePooling.Token;
    [Help("deep memories: soft clamp of each token's inner gradient norm per memory layer (c·tanh(‖g‖/c)); 0 = off"), Range(0, 1e6)]
    public double MemoryGradClip { get; init; }
    [Help("deep memories: Omega window in tokens; 0 = the rule's own (4 for omeganet and atlas, 1 otherwise)"), Range(0, 1024)]
    public int MemoryWindow { get; init; }
    [Help(
        "deep memories: scale each token's inner gradient by ‖δ_L‖² / Σ_l ‖a_l‖²‖δ_l‖² (normalised LMS " +
        "for the whole memory: to first order the written key's read moves by θ·δ_L, as a unit key's " +
        "read does under the delta rule), so a growing memory cannot make the inner step overshoot; off " +
        "= plain gradient steps")]
    public bool MemoryNormalizedStep { get; init; } = true;
    [Help("deep memories: learner: rule (the rule's own), gradient_descent, momentum or muon (Newton–Schulz on the momentum)")]
    public MemoryLearnerKind MemoryLearner { get; init; } = MemoryLearnerKind.Rule;
    [Help("deep memories: feature map on keys and queries: none, polynomial or taylor (degree 2, ATLAS)")]
    public MemoryFeatureMapKind MemoryFeatureMap { get; init; } = MemoryFeatureMapKind.None;
    [Help("titans_mac/mag/mal: learned input-independent tokens P prepended to the attention (and, for mag/mal, memory) input"),
        Range(0, 1024)]
    public int PersistentTokens { get; init; } = 4;
    [Help("titans_mac: tokens per segment; attention spans one segment, " +
        "the memory is written once per segment (sets its memory_chunk_size)"), Range(1, 1024)]
    public int SegmentSize { get; init; } = 32;
    [Help("SwiGLU hidden size as a multiple of d_model; 0 = no MLP (Zoology's MQAR setting)"), Range(0, 64)]
    public double MlpRatio { get; init; } = 4;
    [Help("share the embedding matrix with the output head")] public bool TieEmbeddings { get; init; }
    [Help("MAD compression: targets the compression decoder can reconstruct from the last position (≥ seq_len − 1 of the " +
        "task); 0 = no decoder")]
    [Range(0, 1 << 20)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int CompressionTargets { get; init; }
    [Help("RMSNorm epsilon"), Range(0, 1)] public double NormEps { get; init; } = 1e-5;
    [Help("standard deviation of the initial weights"), Range(0, 10)] public double InitStd { get; init; } = 0.02;

    [JsonIgnore] public int HeadDim => DModel / NumHeads;

    /// <summary>The mixer of layer i (hybrids list one per layer).</summary>
    public MixerKind MixerOf(int layer) => LayerMixers.Length == 0 ? Mixer : LayerMixers[layer];

    /// <summary>Memory key / value width per head.</summary>
    [JsonIgnore] public int KeyHeadDim => (int)Math.Round(DModel * ExpandK) / NumHeads;
    [JsonIgnore] public int ValueHeadDim => (int)Math.Round(DModel * ExpandV) / NumHeads;

    /// <summary>SwiGLU hidden width: ratio·d rounded up to a multiple of 8 (0 when there is no MLP).</summary>
    [JsonIgnore] public int MlpHidden => MlpRatio == 0 ? 0 : ((int)Math.Ceiling(MlpRatio * DModel) + 7) / 8 * 8;

    /// <summary>
    /// Recurrent state a layer carries to recall over a context of length L: attention's KV cache (2·L·d) grows
    /// with L; a matrix memory holds H·Dk·Dv however long the context (short-conv tails not counted), a mixture of
    /// memories that once per memory, a deep memory its MLP's weights two or three times (see DeepMemoryMixer).
    /// </summary>
    public long StateFloatsPerLayer(int contextLength) => Mixer switch
    {
        MixerKind.Attention => 2L * contextLength * DModel,
        MixerKind.Mom => (NumMemories + (SharedMemory ? 1L : 0)) * NumHeads * KeyHeadDim * ValueHeadDim,
        _ when DeepRule(Mixer) is { } rule => DeepMemoryMixer.StateFloats(this, rule),
        _ => (long)NumHeads * KeyHeadDim * ValueHeadDim,
    };

    /// <summary>The deep-memory rule of a mixer kind (null for attention and the matrix memories).</summary>
    public static DeepMemoryRule? DeepRule(MixerKind kind) =>
        DeepMemoryRule.Named.GetValueOrDefault(kind.ToString().ToLowerInvariant());

    /// <summary>A named deep rule with this config's overrides: Omega window, learner and gradient clamp.</summary>
    public DeepMemoryRule Configure(DeepMemoryRule rule)
    {
        var windowed = MemoryWindow > 0 ? rule.WithWindow(MemoryWindow) : rule;
        Learner learner = MemoryLearner switch
        {
            MemoryLearnerKind.GradientDescent => new GradientDescent(),
            MemoryLearnerKind.Momentum => new MomentumDescent(),
            MemoryLearnerKind.Muon => new Muon(),
            _ => rule.Learner,
        };
        return windowed with { Learner = learner, GradientClip = MemoryGradClip, NormalizedStep = MemoryNormalizedStep };
    }

    /// <summary>Titans' architectures (MAC, MAG, MAL), which hold a Titans deep memory beside attention.</summary>
    public static bool IsTitansArchitecture(MixerKind kind) => kind is MixerKind.TitansMac or MixerKind.TitansMag or MixerKind.TitansMal;

    public IEnumerable<(string, string)> Validate()
    {
        if (DModel % NumHeads != 0) yield return ("num_heads", $"d_model {DModel} is not divisible by num_heads {NumHeads}");
        if (LayerMixers.Length != 0 && LayerMixers.Length != NumLayers)
            yield return ("layer_mixers", $"lists {LayerMixers.Length} mixers for {NumLayers} layers");
        foreach (var (name, expand) in new[] { ("expand_k", ExpandK), ("expand_v", ExpandV) })
            if ((int)Math.Round(DModel * expand) % NumHeads != 0 || (int)Math.Round(DModel * expand) < NumHeads)
                yield return (name, $"d_model·{name} = {Math.Round(DModel * expand)} must be a positive multiple of num_heads {NumHeads}");
        if (Enumerable.Range(0, NumLayers).Any(i => MixerOf(i) == MixerKind.Retnet) && KeyHeadDim % 2 != 0)
            yield return ("expand_k", $"RetNet rotates q and k, so the key width per head must be even; it is {KeyHeadDim}");
        if (DtMin > DtMax) yield return ("dt_min", $"{DtMin} exceeds dt_max {DtMax}");
        if (TopK > NumMemories) yield return ("top_k", $"routes each token to {TopK} memories but num_memories is {NumMemories}");
        bool deep = Enumerable.Range(0, NumLayers).Any(i => DeepRule(MixerOf(i)) is not null || IsTitansArchitecture(MixerOf(i)));
        if (deep && MemoryResidualNorm && (KeyHeadDim != ValueHeadDim || MemoryFeatureMap != MemoryFeatureMapKind.None))
            yield return ("memory_residual_norm",
                $"x + LN(mlp(x)) needs the memory's input and output sizes equal; key " +
                $"{MemoryFeatureMap switch
                {
                    MemoryFeatureMapKind.None => KeyHeadDim,
                    _ => Memory.Deep.MemoryFeatureMap.Width(MemoryFeatureMap, KeyHeadDim),
                }}" +
                $" vs value {ValueHeadDim} (set it false, or expand_k = expand_v without a feature map)");
        if (Positions == PositionKind.Rope && HeadDim % 2 != 0)
            yield return ("positions", $"rotary positions need an even head size; d_model/num_heads = {HeadDim}");
    }
}
