using System.Text.Json.Serialization;
using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>Memory kept outside the layers, across segments of the input (docs/mechanisms.md#segment-memories):
/// none, the Recurrent Memory Transformer's memory tokens, or HMT's memory tokens recalled from a cache.</summary>
public enum SegmentMemoryKind { None, Rmt, Hmt }

/// <summary>model.segments: a segment-level recurrence around the whole backbone (docs/mechanisms.md#segment-memories).</summary>
public sealed record SegmentMemoryConfig : IValidatedConfig
{
    [Help("none; rmt (memory tokens read in front of each segment and written behind it, carried to the next); " +
        "hmt (rmt whose read memory is recalled from a cache of past memories by a summary of the segment's start)")]
    public SegmentMemoryKind Kind { get; init; } = SegmentMemoryKind.None;
    [Help("tokens per segment; the backbone sees one segment (plus the memory) at a time"), Range(1, 1 << 16)]
    public int Length { get; init; } = 64;
    [Help("memory tokens m in front of and behind each segment (hmt keeps one memory vector per segment: 1)"), Range(1, 1024)]
    public int MemoryTokens { get; init; } = 4;
    [Help("truncated backpropagation: the memory (and hmt's cache) is detached after every this many segments, so a " +
        "loss reaches back at most this many segments; 0 = through the whole input"), Range(0, 1 << 20)]
    public int Bptt { get; init; }
    [Help("HMT's sensory memory: the last k tokens of the previous segment are read again in front of the segment"),
        Range(0, 1 << 16)]
    public int SensoryTokens { get; init; }
    [Help("hmt: the summary pass reads this fraction of the segment's first tokens (HMT reads ahead within a segment " +
        "by this much; docs/mechanisms.md#segment-memories)"), Range(0.0001, 1)]
    public double SummaryFraction { get; init; } = 0.5;
    [Help("hmt: memories of the last N segments kept for recall"), Range(1, 1 << 16)]
    public int Cache { get; init; } = 100;
    [Help("hmt: width of the recall's query and key projections; 0 = d_model"), Range(0, 16384)]
    public int RecallDim { get; init; }

    [JsonIgnore] public bool Enabled => Kind != SegmentMemoryKind.None;

    /// <summary>Tokens of a segment HMT's summary pass reads: round(summary_fraction · length), at least 1.</summary>
    [JsonIgnore] public int SummaryTokens => Math.Max(1, (int)Math.Round(SummaryFraction * Length));

    /// <summary>Longest input the backbone sees: read memory, sensory tokens, a segment, write memory.</summary>
    [JsonIgnore] public int BackboneLength => 2 * MemoryTokens + SensoryTokens + Length;

    public IEnumerable<(string, string)> Validate()
    {
        if (Kind == SegmentMemoryKind.Hmt && MemoryTokens != 1)
            yield return ("memory_tokens", $"hmt recalls one memory vector per segment; set 1 (it is {MemoryTokens})");
    }
}
