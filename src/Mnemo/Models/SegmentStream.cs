using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>
/// What a <see cref="SegmentMemory"/> carries from one segment to the next: RMT's memory, HMT's cache of written memories,
/// the sensory tokens, and (when streaming) the tokens of a segment that is not complete yet. A streaming stream owns
/// detached copies and disposes what it replaces, so a long stream keeps a constant number of live tensors; the stream
/// of one training pass keeps the autograd graph (up to the truncation) and leaves its tensors to the pass's scope.
/// </summary>
public sealed class SegmentStream : IDisposable
{
    readonly bool _keepGraph;

    /// <param name="keepGraph">keep the graph through the carried memory (a training pass)</param>
    public SegmentStream(bool keepGraph = false) => _keepGraph = keepGraph;

    /// <summary>RMT: the memory the last complete segment wrote [B, m, D]; null before the first.</summary>
    public Tensor? Memory { get; private set; }

    /// <summary>HMT: the memories written by the last N complete segments [B, n ≤ N, D], oldest first.</summary>
    public Tensor? Cache { get; private set; }

    /// <summary>The last k tokens of the last complete segment [B, k] int64.</summary>
    public Tensor? Sensory { get; private set; }

    /// <summary>Streaming: the tokens of the segment in progress [B, r &lt; L] int64.</summary>
    public Tensor? Pending { get; private set; }

    /// <summary>Complete segments read so far.</summary>
    public long Segments { get; private set; }

    /// <summary>Bytes the stream holds: the memory, the cache, the sensory and pending tokens.</summary>
    public long Bytes => new[] { Memory, Cache, Sensory, Pending }.Sum(t => t is null ? 0 : t.numel() * t.ElementSize);

    /// <summary>After a complete segment: store what it wrote (<paramref name="cacheSize"/> &gt; 0: push it to the cache
    /// and drop the oldest beyond that size) and its sensory tokens; every <paramref name="bptt"/> segments (0 = never)
    /// cut the graph through them.</summary>
    internal void Advance(Tensor written, int cacheSize, Tensor? sensory, int bptt)
    {
        Segments++;
        bool cut = bptt > 0 && Segments % bptt == 0;
        if (cacheSize > 0)
        {
            var cache = Cache is null ? written : cat([Cache, written], 1);               // [B, n + 1, D]
            Cache = Keep(cache.narrow(1, Math.Max(0, cache.shape[1] - cacheSize), Math.Min(cacheSize, cache.shape[1])), Cache, cut);
        }
        else Memory = Keep(written, Memory, cut);
        Sensory = Keep(sensory, Sensory, cut);
    }

    internal void KeepPending(Tensor? tokens) => Pending = Keep(tokens, Pending, cut: false);

    Tensor? Keep(Tensor? value, Tensor? old, bool cut)
    {
        if (_keepGraph) return cut ? value?.detach() : value;
        var kept = value?.detach().clone().DetachFromDisposeScope();                     // a copy: not a view of a segment's output
        old?.Dispose();
        return kept;
    }

    public void Dispose()
    {
        if (_keepGraph) return;
        foreach (var t in new[] { Memory, Cache, Sensory, Pending }) t?.Dispose();
        Memory = Cache = Sensory = Pending = null;
    }
}
