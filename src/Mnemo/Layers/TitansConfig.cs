using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.titans: Titans' architectures around its memory (docs/mechanisms.md#titans-architectures); the
/// memory itself is set in model.deep, the attention in model.attention.</summary>
public sealed record TitansConfig
{
    [Help("titans_mac/mag/mal: learned input-independent tokens P prepended to the attention (and, for mag/mal, memory) input"),
        Range(0, 1024)]
    public int PersistentTokens { get; init; } = 4;
    [Help("titans_mac: tokens per segment; attention spans one segment, " +
        "the memory is written once per segment (sets its deep.chunk_size)"), Range(1, 1024)]
    public int SegmentSize { get; init; } = 32;
}
