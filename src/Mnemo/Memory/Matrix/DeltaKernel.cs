using static Mnemo.Runtime.MixedPrecision;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// The generalized delta rule (docs/mechanisms.md#the-generalized-delta-rule):
/// <code>S_t = (I − a_t b_tᵀ) Diag(exp g_t) S_{t−1} + k_t v_tᵀ,   o_t = S_tᵀ q_t</code>
/// b_t (the erase vector) reads what the decayed state holds, r_t = b_tᵀ Diag(exp g_t) S_{t−1}, and a_t (the transition
/// vector) is the direction it is taken out along; a = k (the default) replaces what b reads by the written value:
/// S_t = D_t S_{t−1} + k_t (v_t − r_t)ᵀ. The delta rule of DeltaNet, Gated DeltaNet and KDA is the case a = k, b = β k
/// with the value β v, which is what a call with β and no erase vector means; GDN-2 and Comba choose b (and the value)
/// themselves, RWKV-7 also a. g is the log-gate: absent, one per head ([B, T, H]) or one per key channel ([B, T, H, Dk]).
/// With <c>readBeforeDecay</c> b reads the state before the decay, r_t = b_tᵀ S_{t−1}, and the update is
/// S_t = Diag(exp g_t) S_{t−1} − a_t r_tᵀ + k_t v_tᵀ = (Diag(exp g_t) − a_t b_tᵀ) S_{t−1} + k_t v_tᵀ (Comba, RWKV-7).
/// Layout: q, k, b, a [B, T, H, Dk], v [B, T, H, Dv], β [B, T, H], state [B, H, Dk, Dv].
/// </summary>
public static class DeltaKernel
{
    /// <summary>
    /// One token: decay, read r = bᵀ S with the erase vector (b = β k when <paramref name="erase"/> is null; S before the
    /// decay with <paramref name="readBeforeDecay"/>), then write:
    /// S += k (v̂ − r)ᵀ when a = k (v̂ = β v with β), S += k vᵀ − a rᵀ with a transition vector a.
    /// q, k, erase, transition [B, H, Dk], v [B, H, Dv], g null | [B, H] | [B, H, Dk], beta [B, H] or null, state [B, H, Dk, Dv].
    /// </summary>
    public static (Tensor O, Tensor State) Step(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor state,
        Tensor? erase = null, Tensor? transition = null, bool readBeforeDecay = false)
    {
        using var scope = NewDisposeScope();
        var s = g is null ? state : state * (g.dim() == 2 ? g.exp().unsqueeze(-1).unsqueeze(-1) : g.exp().unsqueeze(-1));
        var read = readBeforeDecay ? state : s;
        var recalled = (erase ?? k).unsqueeze(-2).matmul(read).squeeze(-2);  // b S (k S when b = β k; β below)  [B, H, Dv]
        if (transition is null)
        {
            var update = erase is null ? beta!.unsqueeze(-1) * (v - recalled) : v - recalled;  // v̂ − r
            s = s + k.unsqueeze(-1) * update.unsqueeze(-2);                  // S + k (v̂ − r)ᵀ
        }
        else s = s + k.unsqueeze(-1) * v.unsqueeze(-2) - transition.unsqueeze(-1) * recalled.unsqueeze(-2); // S + k vᵀ − a rᵀ
        var o = q.unsqueeze(-2).matmul(s).squeeze(-2);
        return (o.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>The step form applied token by token over [B, T, H, D] inputs.</summary>
    public static (Tensor O, Tensor State) StepLoop(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor? h0,
        Tensor? erase = null, Tensor? transition = null, bool readBeforeDecay = false)
    {
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(q);
        var s = Chunks.InitialState(h0, q, v, dtype);
        // unbind, not select(1, t): one backward node for all T slices; T selects would each backprop a
        // full-size zero tensor, making the backward quadratic in T.
        Tensor[]? Tokens(Tensor? x) => x?.to(dtype).unbind(1);
        var (qs, ks, vs, gs) = (Tokens(q)!, Tokens(k)!, Tokens(v)!, Tokens(g));
        var (bs, es, @as) = (Tokens(beta), Tokens(erase), Tokens(transition));
        var outputs = new List<Tensor>();
        for (int t = 0; t < qs.Length; t++)
        {
            (var o, s) = Step(qs[t], ks[t], vs[t], gs?[t], bs?[t], s, es?[t], @as?[t], readBeforeDecay);
            outputs.Add(o);
        }
        return (stack(outputs, 1).to(q.dtype).MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Chunkwise-parallel form through the WY/UT representation. Per chunk, with γ the chunk-local cumulative
    /// log-gate (per head or per key channel), decayed products X ⋆ Y_ij = Σ_d X_id Y_jd e^{γ_id − γ_jd} (j ≤ i; the
    /// plain product masked when there is no gate), E the erase vectors (β K for the delta rule) and V̂ the written
    /// values (β V): the reads R (rows r_t) solve R = E_γ S0 − tril(E ⋆ A, −1) R + tril(E ⋆ K, −1) V̂, so with
    /// L = I + tril(E ⋆ A, −1) and X = −R (what is written along A):
    /// <code>
    /// W = L⁻¹ (E ⊙ e^γ),   U = −L⁻¹ tril(E ⋆ K, −1) V̂,   X = U − W S0
    /// O = (Q ⊙ e^γ) S0 + (Q ⋆ K) V̂ + (Q ⋆ A) X
    /// S1 = e^{γ_C} ⊙ S0 + (K ⊙ e^{γ_C − γ})ᵀ V̂ + (A ⊙ e^{γ_C − γ})ᵀ X
    /// </code>
    /// With A = K the two terms fold into one, X' = V̂ + X = L⁻¹ V̂ − W S0 (L = I + tril(E ⋆ K, −1)): O = (Q ⊙ e^γ) S0 +
    /// (Q ⋆ K) X' and S1 = e^{γ_C} ⊙ S0 + (K ⊙ e^{γ_C − γ})ᵀ X' — the delta rule's form, at its cost. Everything but X and
    /// S1 is batched over all chunks; those two run as a scan. With one gate per head, X ⋆ Y = (X Yᵀ) ⊙ Γ; per key channel
    /// it is <see cref="ChannelGateChunks"/>' secondary chunking. A read before the decay changes only E's side: E ⋆ Y
    /// decays row t to token t − 1 and E_γ is E ⊙ e^{γ_{t−1}} (<see cref="Decays.StarBefore"/>).
    /// </summary>
    public static (Tensor O, Tensor State) Chunk(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor? h0, int chunkSize = 64,
        Tensor? erase = null, Tensor? transition = null, bool readBeforeDecay = false) =>
        FusedChunk.AppliesToDelta(q, k, v, g, beta, h0, chunkSize, erase, transition, readBeforeDecay)
            ? FusedChunk.Delta(q, k, v, g, beta!, h0, chunkSize)
            : ComposedChunk(q, k, v, g, beta, h0, chunkSize, erase, transition, readBeforeDecay);

    /// <summary>
    /// <see cref="Chunk"/> composed from libtorch operations, whatever the dtype and rule; <see cref="FusedChunk"/>
    /// computes the same for the delta rule in fp32 on AVX-512 CPUs, and this form is its reference.
    /// </summary>
    public static (Tensor O, Tensor State) ComposedChunk(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor? h0,
        int chunkSize = 64, Tensor? erase = null, Tensor? transition = null, bool readBeforeDecay = false)
    {
        using var scope = NewDisposeScope();
        long t = q.shape[1], c = chunkSize;
        var (Q, K, V, dtype) = Chunks.SplitQkv(q, k, v, c);                  // [B, H, N, C, Dk|Dv]
        var Bt = beta is null ? null : Chunks.SplitScalar(beta, c, dtype).unsqueeze(-1);   // [B, H, N, C, 1]
        var E = Bt is null ? Chunks.Split(erase!, c, dtype) : Bt * K;       // erase vectors   [B, H, N, C, Dk]
        var Vw = Bt is null ? V : Bt * V;                                    // written values  [B, H, N, C, Dv]
        var A = transition is null ? null : Chunks.Split(transition, c, dtype);
        var gates = Decays.Of(g, c, dtype);
        Tensor Erasing(Tensor Y) => readBeforeDecay ? gates.StarBefore(E, Y) : gates.Star(E, Y);   // E ⋆ Y
        // L = I + tril(E ⋆ A, −1) is unit lower-triangular. The solver reads only the strict lower part (and its
        // backward gives it a strictly lower gradient), so the diagonal and upper part need no masking.
        var EA = Erasing(A ?? K);
        // L⁻¹ once, then matmuls: cheaper than solving for W and U apart, forward and backward (docs/mechanisms.md).
        var Linv = linalg.solve_triangular(EA, eye(c, dtype: dtype, device: q.device), upper: false, left: true, unitriangular: true);
        var U = A is null ? MatMul(Linv, Vw) : -MatMul(Linv, MatMul(Erasing(K).tril(-1), Vw));   // [B, H, N, C, Dv]
        // W only meets a state that is not zero: none when one chunk starts from the zero state (T ≤ C, no h0).
        bool zeroStart = h0 is null && Q.shape[2] == 1;
        var W = zeroStart ? null : MatMul(Linv, readBeforeDecay ? gates.ReadBefore(E) : gates.Read(E));   // L⁻¹ E_γ  [B, H, N, C, Dk]

        var s = h0?.to(dtype);                                               // null: the zero state
        // Only X and the state are sequential; the reads of every chunk run after the scan as batched matmuls.
        // The scan reads per-chunk slices through unbind (one backward node each; see StepLoop).
        var written = A is null ? null : MatMul(gates.Write(K).transpose(-1, -2), Vw).unbind(2);   // Kᵀ V̂ per chunk
        var (Us, Ws, Along) = (U.unbind(2), W?.unbind(2), gates.Write(A ?? K).transpose(-1, -2).unbind(2));
        var decays = gates.Carry?.unbind(2);
        var (before, xs) = (new Tensor?[Us.Length], new Tensor[Us.Length]);
        for (int n = 0; n < Us.Length; n++)
        {
            before[n] = s;
            xs[n] = s is null ? Us[n] : Us[n] - Ws![n].matmul(s);            // [B, H, C, Dv]
            var write = Along[n].matmul(xs[n]);
            s = Chunks.Advance(s, decays?[n], written is null ? write : written[n] + write);
        }
        var X = zeroStart ? U : stack(xs, 2);
        var outputs = MatMul(gates.Star(Q, A ?? K), X);                      // [B, H, N, C, Dv]
        if (A is not null) outputs = outputs + MatMul(gates.Star(Q, K), Vw);
        if (Chunks.Entering(before, q, v, dtype) is { } entering)
            outputs = outputs + MatMul(gates.Read(Q), entering);               // (Q ⊙ e^γ) S0
        return (Chunks.Merge(outputs, t).to(q.dtype).MoveToOuterDisposeScope(), s!.MoveToOuterDisposeScope());
    }
}
