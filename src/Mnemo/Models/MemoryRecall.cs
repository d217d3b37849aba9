using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>
/// HMT's memory recall (He et al. 2024, §3; docs/mechanisms.md#segment-memories). The backbone reads the segment's first
/// tokens between two copies of a learned summary token t, and its last-layer output at the trailing t is the segment's
/// summary S_n. The memory read by the segment is the cached memories weighted by how well their keys match it:
/// P_n = softmax((S_n W_q)(M W_k)ᵀ / √d_r) M, with M [n, D] the cache (no value projection: P_n is a mix of memories).
/// </summary>
public sealed class MemoryRecall : nn.Module
{
    readonly Parameter summary;                      // [1, D] t; drawn by LanguageModel's init
    readonly Projection q_proj, k_proj;              // D → d_r
    readonly double _scale;

    public MemoryRecall(int dModel, int recallDim) : base(nameof(MemoryRecall))
    {
        summary = nn.Parameter(zeros(1, dModel));
        q_proj = new Projection(dModel, recallDim, hasBias: false);
        k_proj = new Projection(dModel, recallDim, hasBias: false);
        _scale = 1 / Math.Sqrt(recallDim);
        RegisterComponents();
    }

    /// <summary>P_n [B, 1, D] from the embedded first tokens of the segment, start [B, j, D], and the cache [B, n, D].</summary>
    public Tensor Recall(Backbone model, Tensor start, Tensor cache) => Weights(model, start, cache).matmul(cache);

    /// <summary>The recall's attention over the cache, softmax(q kᵀ/√d_r) [B, 1, n].</summary>
    public Tensor Weights(Backbone model, Tensor start, Tensor cache)
    {
        using var scope = NewDisposeScope();
        var t = summary.unsqueeze(0).expand(start.shape[0], -1, -1);                   // [B, 1, D]
        var h = model.ForwardEmbedded(cat([t, start, t], 1));                          // [B, 1 + j + 1, D]
        var s = h.narrow(1, h.shape[1] - 1, 1);                                         // S_n [B, 1, D]
        var scores = q_proj.forward(s).matmul(k_proj.forward(cache).transpose(1, 2)) * _scale;   // [B, 1, n]
        return scores.softmax(-1).MoveToOuterDisposeScope();
    }
}
