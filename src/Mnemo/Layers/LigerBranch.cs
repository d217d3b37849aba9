using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Liger's gated recurrent branch (Lan et al. 2025, "Liger: linearizing large language models to gated recurrent
/// structures"; docs/mechanisms.md#liger-attention), built from an attention layer's own q and k with no new weights:
/// φ(q) = softmax(q), φ(k) = softmax(k) over each head's channels, the per-channel forget gate
/// g = logsigmoid(k) / 16 (the key pooled to the gate's width, which here is the key's own width), and
/// S_t = diag(exp(g_t)) S_{t−1} + φ(k_t)ᵀ v_t, o_t = φ(q_t) S_t (GLA's rule, unscaled).
/// </summary>
public static class LigerBranch
{
    /// <summary>GLA's gate normaliser, which Liger keeps.</summary>
    public const double GateNormalizer = 16;

    /// <summary>
    /// The branch's read o [B, T, H, Dh] and final state [B, H, Dh, Dh] from q, k, v [B, T, H, Dh] (q and k before any
    /// rotary positions), continuing from <paramref name="h0"/> when streaming.
    /// </summary>
    public static (Tensor O, Tensor State) Run(Tensor q, Tensor k, Tensor v, Tensor? h0, int chunkSize, bool streaming)
    {
        using var scope = NewDisposeScope();
        var g = nn.functional.logsigmoid(k) / GateNormalizer;                            // [B, T, H, Dh] per channel
        var inputs = new KernelInputs(q.softmax(-1), k.softmax(-1), v, g, H0: h0);
        var (o, state) = streaming ? MatrixKernels.Continue(MatrixKernelKind.GatedLinear, inputs, chunkSize)
            : MatrixKernels.Run(MatrixKernelKind.GatedLinear, KernelForm.Chunk, inputs, chunkSize);
        return (o.MoveToOuterDisposeScope(), state.MoveToOuterDisposeScope());
    }
}
