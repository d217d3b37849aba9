using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>
/// A segment-level recurrence around the whole backbone (docs/mechanisms.md#segment-memories). The input is cut into
/// segments of L tokens, and the backbone reads one at a time as [M_read ‖ sensory ‖ X_n ‖ M_write]:
/// <list type="bullet">
/// <item>RMT (Bulatov et al. 2022): M_read = M_write = the memory the previous segment wrote (a learned memory for the
/// first); causal attention lets the write slots see the whole segment, and their last-layer outputs are the memory
/// written for the next segment.</item>
/// <item>HMT (He et al. 2024): the written memories go to a cache of the last N, and from the second segment on the
/// memory read is recalled from that cache by a summary of the segment's first tokens (<see cref="MemoryRecall"/>).
/// </item>
/// </list>
/// sensory = the previous segment's last k tokens, read again (HMT's sensory memory; k = 0 turns it off).
/// Each segment starts the backbone afresh at position 0: the segment memory is the only path between segments.
/// </summary>
public sealed class SegmentMemory : nn.Module
{
    readonly Parameter memory;                       // [m, D] the memory read by the first segment
    readonly MemoryRecall? recall;                   // HMT
    readonly SegmentMemoryConfig _config;

    public SegmentMemory(ModelConfig c) : base(nameof(SegmentMemory))
    {
        _config = c.Segments;
        memory = nn.Parameter(zeros(_config.MemoryTokens, c.DModel));                  // drawn by LanguageModel's init
        if (_config.Kind == SegmentMemoryKind.Hmt)
            recall = new MemoryRecall(c.DModel, _config.RecallDim == 0 ? c.DModel : _config.RecallDim);
        RegisterComponents();
    }

    public SegmentMemoryConfig Config => _config;

    /// <summary>
    /// Final hidden states [B, T, D] of tokens [B, T]. Without a stream the input is one whole sequence. With one, the
    /// tokens continue it: a segment left incomplete by the previous call is read again from its start with the new
    /// tokens (its memory is written once it is complete), so feeding a sequence piece by piece gives the whole pass's
    /// states, except that HMT's summary can read only the tokens that have arrived (docs/mechanisms.md#segment-memories).
    /// </summary>
    public Tensor Hidden(Backbone model, Tensor tokens, SegmentStream? stream)
    {
        using var scope = NewDisposeScope();
        var state = stream ?? new SegmentStream(keepGraph: true);
        long pending = state.Pending?.shape[1] ?? 0, length = _config.Length;
        var input = state.Pending is null ? tokens : cat([state.Pending, tokens], 1);   // [B, pending + T]
        long total = input.shape[1];
        var outputs = new List<Tensor>();
        for (long start = 0; start < total; start += length)
        {
            var segment = input.narrow(1, start, Math.Min(length, total - start));      // [B, S]
            outputs.Add(Segment(model, segment, state, complete: segment.shape[1] == length));
        }
        state.KeepPending(total % length == 0 ? null : input.narrow(1, total - total % length, total % length));
        var hidden = outputs.Count == 1 ? outputs[0] : cat(outputs, 1);                  // [B, pending + T, D]
        return hidden.narrow(1, pending, tokens.shape[1]).MoveToOuterDisposeScope();
    }

    /// <summary>One segment [B, S] → its tokens' hidden states [B, S, D]; a complete segment also writes the memory.</summary>
    Tensor Segment(Backbone model, Tensor segment, SegmentStream state, bool complete)
    {
        long batch = segment.shape[0], m = _config.MemoryTokens;
        var x = model.Embed(segment);                                                   // [B, S, D]
        var read = state.Memory ?? memory.unsqueeze(0).expand(batch, -1, -1);          // [B, m, D]
        if (recall is not null && state.Cache is not null)
            read = recall.Recall(model, x.narrow(1, 0, Math.Min(_config.SummaryTokens, x.shape[1])), state.Cache);
        var sensory = state.Sensory is null ? null : model.Embed(state.Sensory);       // [B, k, D]
        Tensor[] parts = sensory is null ? [read, x, read] : [read, sensory, x, read];
        var h = model.ForwardEmbedded(cat(parts, 1));                                   // [B, m + k + S + m, D]
        long before = m + (sensory?.shape[1] ?? 0);
        if (complete)
        {
            var written = h.narrow(1, h.shape[1] - m, m);                              // [B, m, D]
            var sensoryNext = _config.SensoryTokens == 0 ? null
                : segment.narrow(1, segment.shape[1] - Math.Min(_config.SensoryTokens, segment.shape[1]),
                    Math.Min(_config.SensoryTokens, segment.shape[1]));
            state.Advance(written, recall is null ? 0 : _config.Cache, sensoryNext, _config.Bptt);
        }
        return h.narrow(1, before, segment.shape[1]);
    }
}
