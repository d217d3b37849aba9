using static Mnemo.Runtime.MixedPrecision;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// The gated linear memory shared by linear attention, RetNet, GLA and Mamba-2 (docs/mechanisms.md#the-two-matrix-kernels):
/// <code>S_t = diag(exp(g_t)) S_{t−1} + k_tᵀ v_t,   o_t = q_t S_t</code>
/// with the log-gate g_t absent (linear attention), a scalar per head (RetNet, Mamba-2, simple GLA; g [B, T, H])
/// or one value per key channel (GLA; g [B, T, H, Dk]). Layout: q, k [B, T, H, Dk], v [B, T, H, Dv],
/// state [B, H, Dk, Dv]. The step form is for streaming; the chunk form for training and prefill.
/// </summary>
public static class GatedLinearKernel
{
    /// <summary>
    /// One token. q, k [B, H, Dk], v [B, H, Dv], g null | [B, H] | [B, H, Dk], state [B, H, Dk, Dv].
    /// Returns o [B, H, Dv] and the new state.
    /// </summary>
    public static (Tensor O, Tensor State) Step(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor state)
    {
        using var scope = NewDisposeScope();
        var s = state;
        if (g is not null) s = s * (g.dim() == 2 ? g.exp().unsqueeze(-1).unsqueeze(-1) : g.exp().unsqueeze(-1));
        s = s + k.unsqueeze(-1) * v.unsqueeze(-2);                           // + k_tᵀ v_t
        var o = q.unsqueeze(-2).matmul(s).squeeze(-2);                       // q_t S_t
        return (o.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>The step form applied token by token over [B, T, H, D] inputs (what streaming decode does).</summary>
    public static (Tensor O, Tensor State) StepLoop(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? h0)
    {
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(q);
        var s = Chunks.InitialState(h0, q, v, dtype);
        // unbind, not select(1, t): one backward node for all T slices; T selects would each backprop a
        // full-size zero tensor, making the backward quadratic in T.
        var (qs, ks, vs, gs) = (q.to(dtype).unbind(1), k.to(dtype).unbind(1), v.to(dtype).unbind(1), g?.to(dtype).unbind(1));
        var outputs = new List<Tensor>();
        for (int t = 0; t < qs.Length; t++)
        {
            (var o, s) = Step(qs[t], ks[t], vs[t], gs?[t], s);
            outputs.Add(o);
        }
        return (stack(outputs, 1).to(q.dtype).MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Chunkwise-parallel form (chunk size C, any T). Within a chunk the outputs are one masked matmul; across
    /// chunks the state is carried by a scan:
    /// <code>O = (Q ⊙ e^b) S0 + P V,   S1 = diag(e^{b_C}) S0 + (K ⊙ e^{b_C − b})ᵀ V</code>
    /// with b the chunk-local cumulative log-gate and P_ij = Σ_d Q_id K_jd e^{b_id − b_jd} for j ≤ i.
    /// </summary>
    public static (Tensor O, Tensor State) Chunk(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? h0, int chunkSize = 64) =>
        FusedChunk.AppliesToGatedLinear(q, k, v, g, h0, chunkSize)
            ? FusedChunk.GatedLinear(q, k, v, g, h0, chunkSize)
            : ComposedChunk(q, k, v, g, h0, chunkSize);

    /// <summary>
    /// <see cref="Chunk"/> composed from libtorch operations, whatever the dtype and gate; <see cref="FusedChunk"/>
    /// computes the same with a gate per head or none, in fp32 on AVX-512 CPUs, and this form is its reference.
    /// </summary>
    public static (Tensor O, Tensor State) ComposedChunk(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? h0, int chunkSize = 64)
    {
        using var scope = NewDisposeScope();
        long t = q.shape[1], c = chunkSize;
        var (Q, K, V, dtype) = Chunks.SplitQkv(q, k, v, c);                  // [B, H, N, C, Dk|Dv]

        var gates = Decays.Of(g, c, dtype);
        var P = gates.Star(Q, K);                                            // [B, H, N, C, C]
        var written = MatMul(gates.Write(K).transpose(-1, -2), V);                  // [B, H, N, Dk, Dv]
        var s = h0?.to(dtype);                                               // null: the zero state
        // Per-chunk slices through unbind: one backward node each (n selects would backprop n full-size zeros).
        var (writes, decays) = (written.unbind(2), gates.Carry?.unbind(2));
        var before = new Tensor?[writes.Length];                             // the state entering each chunk
        for (int n = 0; n < before.Length; n++)
        {
            before[n] = s;
            s = Chunks.Advance(s, decays?[n], writes[n]);
        }
        var O = MatMul(P, V);                                                 // [B, H, N, C, Dv]
        if (Chunks.Entering(before, q, v, dtype) is { } entering) O = O + MatMul(gates.Read(Q), entering);
        return (Chunks.Merge(O, t).to(q.dtype).MoveToOuterDisposeScope(), s!.MoveToOuterDisposeScope());
    }
}
