using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.attention: the settings of softmax attention alone (also the attention branch of titans_mag and titans_mal).</summary>
public sealed record AttentionConfig
{
    [Help("sliding-window size in tokens; 0 = full causal attention"), Range(0, 1 << 24)] public int Window { get; init; }
}
