using static Mnemo.Runtime.MixedPrecision;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// The (gated) delta rule of DeltaNet, Gated DeltaNet and Kimi Delta Attention (docs/mechanisms.md#the-two-matrix-kernels):
/// <code>S_t = (I − β_t k_t k_tᵀ) Diag(exp g_t) S_{t−1} + β_t k_t v_tᵀ,   o_t = S_tᵀ q_t</code>
/// g is the log-gate: absent (DeltaNet), one per head (Gated DeltaNet, g [B, T, H]) or one per key channel (KDA,
/// g [B, T, H, Dk]); β [B, T, H] the writing strength. Layout: q, k [B, T, H, Dk], v [B, T, H, Dv], state [B, H, Dk, Dv].
/// </summary>
public static class DeltaKernel
{
    /// <summary>
    /// One token: decay, then replace what the state recalls for k by v (v' = β(v − k S); S += kᵀ v').
    /// q, k [B, H, Dk], v [B, H, Dv], g null | [B, H] | [B, H, Dk], beta [B, H], state [B, H, Dk, Dv].
    /// </summary>
    public static (Tensor O, Tensor State) Step(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor beta, Tensor state)
    {
        using var scope = NewDisposeScope();
        var s = g is null ? state : state * (g.dim() == 2 ? g.exp().unsqueeze(-1).unsqueeze(-1) : g.exp().unsqueeze(-1));
        var recalled = k.unsqueeze(-2).matmul(s).squeeze(-2);                 // k S       [B, H, Dv]
        var update = beta.unsqueeze(-1) * (v - recalled);                    // v'
        s = s + k.unsqueeze(-1) * update.unsqueeze(-2);                      // S + kᵀ v'
        var o = q.unsqueeze(-2).matmul(s).squeeze(-2);
        return (o.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>The step form applied token by token over [B, T, H, D] inputs.</summary>
    public static (Tensor O, Tensor State) StepLoop(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor beta, Tensor? h0)
    {
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(q);
        var s = Chunks.InitialState(h0, q, v, dtype);
        // unbind, not select(1, t): one backward node for all T slices; T selects would each backprop a
        // full-size zero tensor, making the backward quadratic in T.
        var (qs, ks, vs, bs) = (q.to(dtype).unbind(1), k.to(dtype).unbind(1), v.to(dtype).unbind(1), beta.to(dtype).unbind(1));
        var gs = g?.to(dtype).unbind(1);
        var outputs = new List<Tensor>();
        for (int t = 0; t < qs.Length; t++)
        {
            (var o, s) = Step(qs[t], ks[t], vs[t], gs?[t], bs[t], s);
            outputs.Add(o);
        }
        return (stack(outputs, 1).to(q.dtype).MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Chunkwise-parallel form through the WY/UT representation. Per chunk, with γ the chunk-local cumulative
    /// log-gate (per head or per key channel) and decayed products X ⋆ Y_ij = Σ_d X_id Y_jd e^{γ_id − γ_jd} (j ≤ i;
    /// the plain product masked when there is no gate):
    /// <code>
    /// A = tril(diag(β)(K ⋆ K), −1),   L = I + A            (unit lower-triangular)
    /// W = L⁻¹ diag(β)(K ⊙ e^γ),       U = L⁻¹ diag(β) V   (L⁻¹ by one batched forward substitution)
    /// V_new = U − W S0
    /// O = (Q ⊙ e^γ) S0 + (Q ⋆ K) V_new
    /// S1 = e^{γ_C} ⊙ S0 + (K ⊙ e^{γ_C − γ})ᵀ V_new
    /// </code>
    /// Everything but V_new and S1 is batched over all chunks; those two run as a scan. With one gate per head,
    /// X ⋆ Y = (X Yᵀ) ⊙ Γ; per key channel it is <see cref="ChannelGateChunks"/>' secondary chunking.
    /// </summary>
    public static (Tensor O, Tensor State) Chunk(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor beta, Tensor? h0, int chunkSize = 64)
    {
        using var scope = NewDisposeScope();
        long t = q.shape[1], c = chunkSize;
        var (Q, K, V, dtype) = Chunks.SplitQkv(q, k, v, c);                  // [B, H, N, C, Dk|Dv]
        var B = Chunks.SplitScalar(beta, c, dtype).unsqueeze(-1);            // [B, H, N, C, 1]
        var (KK, QK, Kread, Qread, Kwrite, carry) = Terms(Q, K, g, c, dtype);
        // L = I + tril(A, −1) is unit lower-triangular. The solver reads only A's strict lower part (and its
        // backward gives A a strictly lower gradient), so the diagonal and upper part of A need no masking.
        var A = B * KK;                                                      // diag(β)(K ⋆ K)
        // L⁻¹ once, then two matmuls: cheaper than solving for W and U apart, forward and backward (docs/mechanisms.md).
        var Linv = linalg.solve_triangular(A, eye(c, dtype: dtype, device: q.device), upper: false, left: true, unitriangular: true);
        var U = MatMul(Linv, B * V);                                          // [B, H, N, C, Dv]
        // W only meets a state that is not zero: none when one chunk starts from the zero state (T ≤ C, no h0).
        bool zeroStart = h0 is null && Q.shape[2] == 1;
        var W = zeroStart ? null : MatMul(Linv, B * Kread);                   // L⁻¹ diag(β)(K ⊙ e^γ)  [B, H, N, C, Dk]

        var s = h0?.to(dtype);                                               // null: the zero state
        // Only V_new and the state are sequential; the reads of every chunk run after the scan as two batched matmuls.
        // The scan reads per-chunk slices through unbind (one backward node each; see StepLoop).
        var (Us, Ws, Ks) = (U.unbind(2), W?.unbind(2), Kwrite.transpose(-1, -2).unbind(2));
        var decays = carry?.unbind(2);
        var (before, vNews) = (new Tensor?[Us.Length], new Tensor[Us.Length]);
        for (int n = 0; n < Us.Length; n++)
        {
            before[n] = s;
            vNews[n] = s is null ? Us[n] : Us[n] - Ws![n].matmul(s);         // [B, H, C, Dv]
            var written = Ks[n].matmul(vNews[n]);
            s = Chunks.Advance(s, decays?[n], written);
        }
        var outputs = MatMul(QK, zeroStart ? U : stack(vNews, 2));           // [B, H, N, C, Dv]
        if (Chunks.Entering(before, q, v, dtype) is { } entering)
            outputs = outputs + MatMul(Qread, entering);                      // (Q ⊙ e^γ) S0
        return (Chunks.Merge(outputs, t).to(q.dtype).MoveToOuterDisposeScope(), s!.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The gated terms of the chunk form from chunks Q, K [B, H, N, C, Dk] and the log-gates g ([B, T, H] or
    /// [B, T, H, Dk]; null: none): K ⋆ K and Q ⋆ K [.., C, C] (diagonal included), K ⊙ e^γ and Q ⊙ e^γ (the reads of
    /// the entering state), K ⊙ e^{γ_C − γ} (the writes to the leaving state) and e^{γ_C} (null without a gate;
    /// [B, H, N, 1, 1] per head, [B, H, N, Dk, 1] per channel).
    /// </summary>
    static (Tensor KK, Tensor QK, Tensor Kread, Tensor Qread, Tensor Kwrite, Tensor? Carry) Terms(Tensor Q, Tensor K, Tensor? g,
        long c, ScalarType dtype)
    {
        if (g is null)
        {
            var mask = Chunks.CausalMask(c, dtype, Q.device);
            return (MatMul(K, K.transpose(-1, -2)) * mask, MatMul(Q, K.transpose(-1, -2)) * mask, K, Q, K, null);
        }
        if (g.dim() == 3)
        {
            var gc = Chunks.SplitScalar(g, c, dtype);                        // [B, H, N, C], per-token log-gates
            var decay = Chunks.DecayMatrix(gc);                              // Γ ⊙ M_incl, [.., C, C]
            var (read, write, carry) = Chunks.ScalarDecays(gc);
            return (MatMul(K, K.transpose(-1, -2)) * decay, MatMul(Q, K.transpose(-1, -2)) * decay, K * read, Q * read, K * write,
                carry);
        }
        var gk = Chunks.Split(g, c, dtype);                                  // [B, H, N, C, Dk]
        var (QK, Qread, Kwrite, channelCarry) = ChannelGateChunks.Terms(Q, K, gk);
        var (KK, Kread, _, _) = ChannelGateChunks.Terms(K, K, gk);
        return (KK, QK, Kread, Qread, Kwrite, channelCarry);
    }
}
