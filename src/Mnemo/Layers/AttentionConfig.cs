using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.attention: the settings of softmax attention alone (also the attention branch of titans_mag and titans_mal).</summary>
public sealed record AttentionConfig
{
    [Help("sliding-window size in tokens; 0 = full causal attention"), Range(0, 1 << 24)] public int Window { get; init; }
    [Help("landmark attention: a learned landmark token after every landmark_block tokens, and the grouped softmax " +
        "(docs/mechanisms.md#landmark-attention); 0 = off"), Range(0, 1 << 20)]
    public int LandmarkBlock { get; init; }
    [Help("landmark attention outside training: each query reads its own block and the landmark_top_k earlier blocks whose " +
        "landmarks score highest; 0 = every block (the training form)"), Range(0, 1 << 20)]
    public int LandmarkTopK { get; init; }
    [Help("short convolutions on the attention layers' q, k, v; null = model.short_conv (fla's hybrids have none on their " +
        "attention layers while their delta-rule layers do)")]
    public bool? ShortConv { get; init; }
}
