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
    Omeganet, Atlas, TitansMac, TitansMag, TitansMal, Aaren, PrefixLinearAttention, LigerAttention, Lstm, Gru, Memmamba,
    SynapticResonance, Kda, Gdn2, Comba, Rwkv7, Mlstm, Mamba3, LogLinearMamba2, MesaNet,
    LogLinearGatedDeltaNet
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
    [Help("depthwise causal short convolution on q, k, v (Zoology/fla style); aaren has none")] public bool ShortConv { get; init; } = true;
    [Help("short convolution kernel size"), Range(1, 64)] public int ConvSize { get; init; } = 4;
    [Help("memory key width as a multiple of d_model (split over heads)"), Range(0.01, 16)] public double ExpandK { get; init; } = 1;
    [Help("memory value width as a multiple of d_model (split over heads)"), Range(0.01, 16)] public double ExpandV { get; init; } = 1;
    [Help(
        "memory mixers: gate the read by silu(g_proj x) before o_proj; unset = the mechanism's own choice (on for " +
        "gated_delta_net, gla, retnet and mom, off for delta_net, linear_attention and the deep memories). On MQAR at " +
        "600 steps the gate is what keeps Gated DeltaNet near chance (docs/deep-memories.md)")]
    public bool? OutputGate { get; init; }
    [Help(
        "start the output gate open: g_proj gets a bias, its weights start at 0 and the bias at silu⁻¹(1) ≈ 1.278, so " +
        "the gate starts at exactly 1 on every channel instead of a random-sign factor of about ±0.08 " +
        "(docs/deep-memories.md, 2d)")]
    public bool OutputGateOpen { get; init; }
    [Help("SwiGLU hidden size as a multiple of d_model; 0 = no MLP (Zoology's MQAR setting)"), Range(0, 64)]
    public double MlpRatio { get; init; } = 4;
    [Help("share the embedding matrix with the output head")] public bool TieEmbeddings { get; init; }
    [Help("RMSNorm epsilon"), Range(0, 1)] public double NormEps { get; init; } = 1e-5;
    [Help("standard deviation of the initial weights"), Range(0, 10)] public double InitStd { get; init; } = 0.02;


    [Help("softmax attention (and the attention branch of titans_mag, titans_mal)")]
    public AttentionConfig Attention { get; init; } = new();
    [Help("the matrix memories, and the memories of mom")] public MatrixMemoryConfig Matrix { get; init; } = new();
    [Help("mixture of memories: routing")] public MixtureConfig Mom { get; init; } = new();
    [Help("the deep memories (titans, moneta, yaad, memora, omeganet, atlas) and the memory of titans_mac/mag/mal")]
    public DeepMemoryConfig Deep { get; init; } = new();
    [Help("Titans' architectures titans_mac, titans_mag, titans_mal")] public TitansConfig Titans { get; init; } = new();
    [Help("the classic recurrent cells lstm and gru")] public RecurrentConfig Rnn { get; init; } = new();
    [Help("memmamba's note pool (its Mamba-2 is set in model.matrix)")] public MemMambaConfig Memmamba { get; init; } = new();
    [Help("the synaptic_resonance mixer's resonance term")] public SynapticConfig Synaptic { get; init; } = new();
    [Help("contextual memory reweaving: captured latent states of every level, rewoven into the last " +
        "(docs/mechanisms.md#contextual-memory-reweaving)")]
    public ReweavingConfig Reweaving { get; init; } = new();
    [Help("memory carried across segments around the whole backbone: rmt, hmt (docs/mechanisms.md#segment-memories)")]
    public SegmentMemoryConfig Segments { get; init; } = new();

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
    /// memories that once per memory, a deep memory its MLP's weights two or three times (see DeepMemoryMixer), Aaren
    /// a running max, a normaliser and a weighted sum per head, Liger attention a GLA state and a window of keys and values,
    /// an LSTM (h, c) and a GRU h. Under a segment memory (model.segments) a layer never sees more than one segment and its
    /// memory, so the context is at most that long; the carried memory itself (m·d or cache·d floats) is the model's, not
    /// a layer's. Reweaving's pools (model.reweaving, L + 1 of them) are the model's too, and are counted here as an equal
    /// share per layer, rounded up.
    /// </summary>
    public long StateFloatsPerLayer(int contextLength) =>
        StateFloats(Segments.Enabled ? Math.Min(contextLength, Segments.BackboneLength) : contextLength)
        + (Reweaving.StateFloats(DModel, NumLayers) + NumLayers - 1) / NumLayers;

    long StateFloats(int contextLength) => Mixer switch
    {
        MixerKind.Attention => 2L * contextLength * DModel,
        MixerKind.Aaren => (long)NumHeads * (2 + HeadDim),
        MixerKind.Lstm => 2L * DModel,
        MixerKind.Gru => DModel,
        MixerKind.Memmamba => (long)NumHeads * KeyHeadDim * ValueHeadDim
            + (long)Memmamba.PoolSize * (Memmamba.Width(DModel) + DModel),
        MixerKind.SynapticResonance => (long)NumHeads * KeyHeadDim * (ValueHeadDim + (Synaptic.Resonance ? KeyHeadDim : 0)),
        MixerKind.LigerAttention => (long)NumHeads * HeadDim * HeadDim + 2L * Math.Min(Attention.Window, contextLength) * DModel,
        MixerKind.Rwkv7 => (long)NumHeads * KeyHeadDim * ValueHeadDim + DModel,             // the state and the shifted token
        MixerKind.Mlstm => (long)NumHeads * (KeyHeadDim * (ValueHeadDim + 1L) + 1),          // C, the normaliser n and m
        MixerKind.LogLinearMamba2 or MixerKind.LogLinearGatedDeltaNet =>
            (long)NumHeads * KeyHeadDim * ValueHeadDim * (LogLinearMamba2.LevelCount(this) - 1),        // per level
        MixerKind.MesaNet => (long)NumHeads * KeyHeadDim * (KeyHeadDim + ValueHeadDim),         // H and G
        MixerKind.Mamba3 => (long)NumHeads * (KeyHeadDim * (long)ValueHeadDim                   // S, the last token's R keys
            + (long)Matrix.MimoRank * (KeyHeadDim + ValueHeadDim) + Mamba3.RotaryRates(KeyHeadDim)),  // and values, the angles
        MixerKind.Mom => (Mom.NumMemories + (Mom.SharedMemory ? 1L : 0)) * NumHeads * KeyHeadDim * ValueHeadDim,
        _ when DeepRule(Mixer) is { } rule => DeepMemoryMixer.StateFloats(this, rule),
        _ => (long)NumHeads * KeyHeadDim * ValueHeadDim,
    };

    /// <summary>The deep-memory rule of a mixer kind (null for attention and the matrix memories).</summary>
    public static DeepMemoryRule? DeepRule(MixerKind kind) =>
        DeepMemoryRule.Named.GetValueOrDefault(kind.ToString().ToLowerInvariant());

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
        var withoutSteps = Enumerable.Range(0, NumLayers).Select(MixerOf)
            .Where(m => m is not (MixerKind.DeltaNet or MixerKind.GatedDeltaNet or MixerKind.Attention)).Distinct().ToArray();
        if (Matrix.HouseholderSteps > 1 && withoutSteps.Length > 0)
            yield return ("matrix.householder_steps", $"{Matrix.HouseholderSteps} Householder steps per token are a delta_net or " +
                $"gated_delta_net setting; {string.Join(", ", withoutSteps.Select(m => Runtime.Names.Of(m)))} has none");
        if (Matrix.MimoRank > 1 && !Enumerable.Range(0, NumLayers).Any(i => MixerOf(i) == MixerKind.Mamba3))
            yield return ("matrix.mimo_rank", $"a MIMO rank of {Matrix.MimoRank} is a mamba3 setting, and no layer is mamba3");
        if (Enumerable.Range(0, NumLayers).Any(i => MixerOf(i) == MixerKind.Retnet) && KeyHeadDim % 2 != 0)
            yield return ("expand_k", $"RetNet rotates q and k, so the key width per head must be even; it is {KeyHeadDim}");
        bool deep = Enumerable.Range(0, NumLayers).Any(i => DeepRule(MixerOf(i)) is not null || IsTitansArchitecture(MixerOf(i)));
        if (deep && Deep.ResidualNorm && (KeyHeadDim != ValueHeadDim || Deep.FeatureMap != MemoryFeatureMapKind.None))
            yield return ("deep.residual_norm",
                $"x + LN(mlp(x)) needs the memory's input and output sizes equal; key " +
                $"{MemoryFeatureMap.Width(Deep.FeatureMap, KeyHeadDim)}" +
                $" vs value {ValueHeadDim} (set it false, or expand_k = expand_v without a feature map)");
        if (Attention.Window == 0 && Enumerable.Range(0, NumLayers).Any(i => MixerOf(i) == MixerKind.LigerAttention))
            yield return ("attention.window", "liger_attention mixes its recurrent branch with sliding-window attention: set a window " +
                "(Liger uses 64)");
        if (Attention.LandmarkBlock > 0)
        {
            if (!Enumerable.Range(0, NumLayers).Any(i => MixerOf(i) == MixerKind.Attention))
                yield return ("attention.landmark_block", "landmark tokens need an attention layer (model.mixer or layer_mixers)");
            if (Enumerable.Range(0, NumLayers).Any(i => IsTitansArchitecture(MixerOf(i))))
                yield return ("attention.landmark_block", "the Titans architectures' attention does not read landmarks");
            if (Attention.Window > 0)
                yield return ("attention.landmark_block",
                    $"landmark attention reads whole blocks; it cannot be combined with window {Attention.Window}");
            if (Positions == PositionKind.Learned)
                yield return ("attention.landmark_block", "landmark tokens take positions of their own; use positions rope or none");
            if (Enumerable.Range(0, NumLayers).Any(i => MixerOf(i) == MixerKind.PrefixLinearAttention))
                yield return ("attention.landmark_block", "a prompt prefix counts input tokens, not landmark positions: " +
                    "prefix_linear_attention cannot share a model with landmarks");
        }
        if (Segments.Enabled)
        {
            if (Attention.LandmarkBlock > 0)
                yield return ("segments.kind",
                    "landmark tokens are placed by absolute position; they cannot share a model with segment memory");
            if (Enumerable.Range(0, NumLayers).Any(i => MixerOf(i) == MixerKind.PrefixLinearAttention))
                yield return ("segments.kind", "prefix_linear_attention reads a prompt across segments; it cannot share a model with " +
                    "segment memory");
            if (Positions == PositionKind.Learned && MaxPositions < Segments.BackboneLength)
                yield return ("max_positions", $"{MaxPositions} learned positions are fewer than the {Segments.BackboneLength} " +
                    "the backbone sees per segment (2·segments.memory_tokens + segments.sensory_tokens + segments.length)");
        }
        if (Rnn.AdcBits > 0 && Rnn.Bidirectional)
            yield return ("rnn.adc_bits", "the ADC cells run one direction; set rnn.bidirectional false");
        if (Rnn.AdcNoise > 0 && Rnn.AdcBits == 0)
            yield return ("rnn.adc_noise", "comparator noise needs an ADC: set rnn.adc_bits");
        if (Reweaving.Enabled && Segments.Enabled)
            yield return ("reweaving.enabled", "reweaving carries its pools through a stream of the backbone; it cannot run inside a " +
                "segment memory (model.segments), which feeds the backbone one segment at a time");
        if (Reweaving.Enabled && Attention.LandmarkBlock > 0)
            yield return ("reweaving.enabled", "landmark tokens would be captured like input tokens; reweaving cannot share a model " +
                "with landmarks");
        if (Positions == PositionKind.Rope && HeadDim % 2 != 0)
            yield return ("positions", $"rotary positions need an even head size; d_model/num_heads = {HeadDim}");
    }
}
