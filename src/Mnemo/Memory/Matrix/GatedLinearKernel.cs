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
    public static (Tensor O, Tensor State) Chunk(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? h0, int chunkSize = 64)
    {
        using var scope = NewDisposeScope();
        long t = q.shape[1], c = chunkSize;
        var (Q, K, V, dtype) = Chunks.SplitQkv(q, k, v, c);                  // [B, H, N, C, Dk|Dv]

        Tensor P, Qdecayed, Kdecayed;                                        // P [B, H, N, C, C]
        Tensor? chunkDecay = null;                                           // e^{b_C}, broadcastable to the state
        if (g is null)
        {
            P = Q.matmul(K.transpose(-1, -2)).masked_fill(Chunks.Upper(c, 0, q.device), 0);
            (Qdecayed, Kdecayed) = (Q, K);
        }
        else if (g.dim() == 3)
        {
            var gc = Chunks.SplitScalar(g, c, dtype);                        // [B, H, N, C], per-token log-gates
            P = Q.matmul(K.transpose(-1, -2)) * Chunks.DecayMatrix(gc);
            var (read, write, carry) = Chunks.ScalarDecays(gc);
            (Qdecayed, Kdecayed, chunkDecay) = (Q * read, K * write, carry);
        }
        else
        {
            var gc = Chunks.Split(g, c, dtype);                              // [B, H, N, C, Dk]
            P = ChannelGateScores(Q, K, gc);
            Qdecayed = Q * gc.cumsum(-2).exp();
            Kdecayed = K * Chunks.SuffixSums(gc, -2).exp();
            chunkDecay = gc.sum(-2).exp().unsqueeze(-1);                     // [B, H, N, Dk, 1]
        }

        var written = Kdecayed.transpose(-1, -2).matmul(V);                  // [B, H, N, Dk, Dv]
        var s = Chunks.InitialState(h0, q, v, dtype);
        // Per-chunk slices through unbind: one backward node each (n selects would backprop n full-size zeros).
        var (writes, decays) = (written.unbind(2), chunkDecay?.unbind(2));
        var before = new Tensor[writes.Length];                              // the state entering each chunk
        for (int n = 0; n < before.Length; n++)
        {
            before[n] = s;
            s = decays is null ? s + writes[n] : decays[n] * s + writes[n];
        }
        var O = P.matmul(V) + Qdecayed.matmul(stack(before, 2));             // [B, H, N, C, Dv]
        return (Chunks.Merge(O, t).to(q.dtype).MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// P_ij = Σ_d Q_id K_jd e^{b_id − b_jd} (j ≤ i) for per-channel gates without overflow: e^{−b} alone grows
    /// without bound, so the chunk is cut into sub-chunks. Between sub-chunks I &gt; J both factors are referenced
    /// to the end of J (e^{b_i − b_ref} and e^{b_ref − b_j}, each ≤ 1) and meet in a matmul; inside a sub-chunk
    /// the exponent is a segment sum formed elementwise (GLA's secondary chunking). All exponents are sums of
    /// the gates they span, never differences of running totals (see <see cref="Chunks.SegmentSums"/>).
    /// </summary>
    static Tensor ChannelGateScores(Tensor Q, Tensor K, Tensor g)
    {
        long bs = Q.shape[0], h = Q.shape[1], n = Q.shape[2], c = Q.shape[3], dk = Q.shape[4];
        long sub = Enumerable.Range(1, (int)Math.Min(16, c)).Last(d => c % d == 0);
        long m = c / sub;
        var Qs = Q.view(bs, h, n, m, sub, dk);                              // [B, H, N, M, c, Dk]
        var Ks = K.view(bs, h, n, m, sub, dk);
        var gs = g.view(bs, h, n, m, sub, dk);

        // b_i − b_ref = (prefix of g inside I up to i) + (totals of the sub-chunks strictly between J and I);
        // b_ref − b_j = (suffix of g inside J after j).
        var prefix = gs.cumsum(-2);                                          // [B, H, N, M, c, Dk]
        var totals = gs.sum(-2);                                             // [B, H, N, M, Dk]
        var through = Chunks.SegmentSums(totals.transpose(-1, -2));          // [B, H, N, Dk, M(I), M(J)] = Σ_{J<L≤I}
        var between = through.permute(0, 1, 2, 4, 5, 3) - totals.unsqueeze(4); // Σ_{J<L<I}, [B, H, N, M, M, Dk]
        var notBelow = ones(m, m, ScalarType.Bool, Q.device).triu().view(1, 1, 1, m, m, 1, 1);
        var exponentQ = (prefix.unsqueeze(4) + between.unsqueeze(5)).masked_fill(notBelow, double.NegativeInfinity);
        var Qref = Qs.unsqueeze(4) * exponentQ.exp();                        // [B, H, N, M(I), M(J), c, Dk]
        var Kref = Ks * Chunks.SuffixSums(gs, -2).exp();                     // [B, H, N, M, c, Dk]
        var off = Qref.matmul(Kref.unsqueeze(3).transpose(-1, -2));          // [B, H, N, M, M, c, c]

        // Diagonal sub-blocks [B, H, N, M, c, c]: Σ_d Q_id K_jd e^{Σ_{j<m≤i} g_md}.
        var exponent = Chunks.SegmentSums(gs.transpose(-1, -2)).permute(0, 1, 2, 3, 5, 6, 4); // [B, H, N, M, c, c, Dk]
        var diag = (Qs.unsqueeze(-2) * Ks.unsqueeze(-3) * exponent.exp()).sum(-1);

        var blocks = off + diag.unsqueeze(4) * eye(m, dtype: Q.dtype, device: Q.device).view(1, 1, 1, m, m, 1, 1);
        return blocks.permute(0, 1, 2, 3, 5, 4, 6).reshape(bs, h, n, c, c); // [B, H, N, (M c), (M c)]
    }
}
