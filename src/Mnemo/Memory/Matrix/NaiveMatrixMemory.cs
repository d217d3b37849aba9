using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Per-token references written as the papers state the recurrences, with explicit matrices (diag(·), I − β kᵀk)
/// rather than the efficient update order the step forms use. Slow by design; for tests and cross-checks.
/// Layout as the kernels: q, k [B, T, H, Dk], v [B, T, H, Dv], g/β [B, T, H] (g [B, T, H, Dk] for per-channel
/// gates), state [B, H, Dk, Dv].
/// </summary>
public static class NaiveMatrixMemory
{
    /// <summary>S_t = diag(exp(g_t)) S_{t−1} + k_tᵀ v_t;  o_t = q_t S_t.</summary>
    public static (Tensor O, Tensor State) GatedLinear(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? h0) =>
        Run(q, v, h0, (t, s) =>
        {
            var kt = k.select(1, t).to(s.dtype).unsqueeze(-1);                   // k_tᵀ   [B, H, Dk, 1]
            var vt = v.select(1, t).to(s.dtype).unsqueeze(-2);                   // v_t    [B, H, 1, Dv]
            var a = g is null ? null : Gate(g.select(1, t).to(s.dtype), s.shape[2]);
            return (a is null ? s : diag_embed(a).matmul(s)) + kt.matmul(vt);
        });

    /// <summary>S_t = (I − β_t k_tᵀ k_t) diag(exp(g_t)) S_{t−1} + β_t k_tᵀ v_t;  o_t = q_t S_t (g per head or per key
    /// channel).</summary>
    public static (Tensor O, Tensor State) Delta(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor beta, Tensor? h0) =>
        Run(q, v, h0, (t, s) =>
        {
            var kt = k.select(1, t).to(s.dtype).unsqueeze(-1);                   // [B, H, Dk, 1]
            var vt = v.select(1, t).to(s.dtype).unsqueeze(-2);                   // [B, H, 1, Dv]
            var bt = beta.select(1, t).to(s.dtype).unsqueeze(-1).unsqueeze(-1);  // [B, H, 1, 1]
            var identity = eye(s.shape[2], dtype: s.dtype, device: s.device);
            var transition = identity - bt * kt.matmul(kt.transpose(-1, -2));    // I − β kᵀk
            if (g is not null) transition = transition.matmul(diag_embed(Gate(g.select(1, t).to(s.dtype), s.shape[2])));
            return transition.matmul(s) + bt * kt.matmul(vt);
        });

    /// <summary>The generalized delta rule S_t = (I − a_t b_tᵀ) diag(exp(g_t)) S_{t−1} + k_tᵀ v_t, or
    /// (diag(exp(g_t)) − a_t b_tᵀ) S_{t−1} + k_tᵀ v_t when b reads the state before the decay;  o_t = q_t S_t, with the
    /// erase vector b and the transition vector a [B, T, H, Dk] (a null: a = k).</summary>
    public static (Tensor O, Tensor State) GeneralDelta(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor erase, Tensor? transition,
        Tensor? h0, bool readBeforeDecay = false) =>
        Run(q, v, h0, (t, s) =>
        {
            var kt = k.select(1, t).to(s.dtype).unsqueeze(-1);                   // [B, H, Dk, 1]
            var at = (transition ?? k).select(1, t).to(s.dtype).unsqueeze(-1);   // [B, H, Dk, 1]
            var bt = erase.select(1, t).to(s.dtype).unsqueeze(-1);               // [B, H, Dk, 1]
            var vt = v.select(1, t).to(s.dtype).unsqueeze(-2);                   // [B, H, 1, Dv]
            var decay = g is null ? eye(s.shape[2], dtype: s.dtype, device: s.device)
                : diag_embed(Gate(g.select(1, t).to(s.dtype), s.shape[2]));   // diag(exp(g_t))
            var erasing = at.matmul(bt.transpose(-1, -2));                       // a bᵀ
            var transitionMatrix = readBeforeDecay ? decay - erasing
                : (eye(s.shape[2], dtype: s.dtype, device: s.device) - erasing).matmul(decay);
            return transitionMatrix.matmul(s) + kt.matmul(vt);
        });

    /// <summary>exp(g_t) as a vector over key channels [B, H, Dk] (a scalar gate is the same value on every channel).</summary>
    static Tensor Gate(Tensor gt, long dk) => (gt.dim() == 2 ? gt.unsqueeze(-1).expand(-1, -1, dk) : gt).exp();

    static (Tensor O, Tensor State) Run(Tensor q, Tensor v, Tensor? h0, Func<long, Tensor, Tensor> update)
    {
        using var scope = NewDisposeScope();
        var dtype = q.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var s = h0?.to(dtype) ?? zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3], dtype, q.device);
        var outputs = new List<Tensor>();
        for (long t = 0; t < q.shape[1]; t++)
        {
            s = update(t, s);
            outputs.Add(q.select(1, t).to(dtype).unsqueeze(-2).matmul(s).squeeze(-2)); // q_t S_t
        }
        return (stack(outputs, 1).to(q.dtype).MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }
}
