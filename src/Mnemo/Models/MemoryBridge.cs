using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>What a <see cref="MemoryBridge"/> carries between segments: the memory tokens and every memory written so far.</summary>
public sealed class BridgeState
{
    /// <summary>The memory tokens written by the last segment [B, M, D]; null before the first.</summary>
    public Tensor? Memory { get; set; }

    /// <summary>The memory tokens of every segment so far, in order [B, n·M, D]; null before the first.</summary>
    public Tensor? Cache { get; set; }

    public long Segments { get; internal set; }
}

/// <summary>
/// VideoLLaMB's recurrent memory bridge (Wang et al. 2024, §3.2; docs/mechanisms.md#scenetilling-and-the-memory-bridge) over
/// a stream of vectors cut into segments. A segment X [B, S, D] is read by post-LN transformer encoder layers (BERT-style,
/// bidirectional, no positions) as [m ‖ X]; the outputs at the M memory positions are the next memory m, and the rest
/// are the segment's outputs. With retrieval, before a segment the memory first reads every earlier memory:
/// m ← LN(m + CrossAttention(m, cache)), which the paper adds against forgetting over long streams.
/// </summary>
public sealed class MemoryBridge : nn.Module
{
    readonly Parameter memory;                                        // [M, D] the first segment's memory
    readonly ModuleList<TransformerEncoderLayer> layers;
    readonly MultiheadAttention? recall;
    readonly LayerNorm? recall_norm;
    readonly int _tokens;

    /// <param name="dModel">D</param>
    /// <param name="memoryTokens">M</param>
    /// <param name="retrieval">read the cache of earlier memories before each segment</param>
    public MemoryBridge(int dModel, int heads, int layerCount, int memoryTokens, bool retrieval) : base(nameof(MemoryBridge))
    {
        _tokens = memoryTokens;
        memory = nn.Parameter(randn(memoryTokens, dModel) * 0.02);
        layers = nn.ModuleList(Enumerable.Range(0, layerCount)
            .Select(_ => nn.TransformerEncoderLayer(dModel, heads, 4 * dModel, dropout: 0)).ToArray());
        if (retrieval)
        {
            recall = nn.MultiheadAttention(dModel, heads);
            recall_norm = nn.LayerNorm(dModel);
        }
        RegisterComponents();
    }

    public int MemoryTokens => _tokens;

    /// <summary>One segment x [B, S, D] → its outputs [B, S, D]; the state moves on by one segment.</summary>
    public Tensor Segment(Tensor x, BridgeState state)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0];
        var m = state.Memory ?? memory.unsqueeze(0).expand(b, -1, -1);                 // [B, M, D]
        if (recall is not null && state.Cache is not null)
        {
            var (read, _) = recall.forward(m.transpose(0, 1), state.Cache.transpose(0, 1), state.Cache.transpose(0, 1),
                null, false, null);                                                     // [M, B, D] (sequence first)
            m = recall_norm!.forward(m + read.transpose(0, 1));
        }
        var h = cat([m, x], 1).transpose(0, 1);                                         // [M + S, B, D]
        foreach (var layer in layers) h = layer.forward(h);
        h = h.transpose(0, 1);                                                          // [B, M + S, D]
        var written = h.narrow(1, 0, _tokens);
        state.Memory = written.MoveToOuterDisposeScope();
        state.Cache = (state.Cache is null ? written : cat([state.Cache, written], 1)).MoveToOuterDisposeScope();
        state.Segments++;
        return h.narrow(1, _tokens, x.shape[1]).MoveToOuterDisposeScope();
    }

    /// <summary>A whole stream x [B, T, D] read segment by segment (segment i starts at <paramref name="starts"/>[i − 1]);
    /// returns the state after the last segment.</summary>
    public BridgeState Read(Tensor x, IReadOnlyList<int> starts)
    {
        var state = new BridgeState();
        var edges = new[] { 0 }.Concat(starts).Append((int)x.shape[1]).ToArray();
        for (int i = 0; i + 1 < edges.Length; i++)
            if (edges[i + 1] > edges[i]) Segment(x.narrow(1, edges[i], edges[i + 1] - edges[i]), state);
        return state;
    }
}
