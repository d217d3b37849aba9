using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// Every token's raw weights of one memory layer within a block, as the chunk form describes them: a few base
/// matrices (the block-start weights, momentum) and the block's rank-1 gradients u_e = a_eᵀ δ_e, combined per token:
/// <code>
/// M_t = Σ_r C[t, r] base_r + Σ_e C[t, R + e] a_eᵀ δ_e  =  C · U,   U = [base_r; a_e ⊗ δ_e] flattened   [B, H, R + E, in·out]
/// </code>
/// One GEMM of the coefficients [n, R + E] with U builds them all. <see cref="Apply"/> computes a per-token quantity
/// from them (<see cref="PerTokenMap"/>) without autograd ever keeping them: they are built in the forward, dropped,
/// and built again in the backward, whose chain rule through C · U is two more GEMMs.
/// </summary>
public static class PerTokenWeights
{
    /// <summary>M_t [B, H, n, in, out] from coefficients [B, H, n, R + E], bases (each [B, H, in, out]), writer
    /// inputs a [B, H, E, in] and deltas δ [B, H, E, out]; differentiable (autograd keeps M).</summary>
    public static Tensor Materialise(Tensor coefficients, IReadOnlyList<Tensor> bases, Tensor a, Tensor delta) =>
        Matrices(coefficients.matmul(Rows(bases, a, delta)), a.shape[^1], delta.shape[^1]);

    /// <summary>map(M_t, x_t) for every token, keeping only the inputs for the backward (see the class summary);
    /// x [B, H, n, ·] is the map's per-token input, or null.</summary>
    public static Tensor Apply(PerTokenMap map, Tensor coefficients, IReadOnlyList<Tensor> bases, Tensor a, Tensor delta,
        Tensor? x = null) =>
        Function.apply([map, coefficients, a, delta, x!, .. bases]);

    /// <summary>U = [base_r; a_e ⊗ δ_e], each row flattened   [B, H, R + E, in·out], written in place (one allocation).</summary>
    static Tensor Rows(IReadOnlyList<Tensor> bases, Tensor a, Tensor delta)
    {
        long r = bases.Count, e = a.shape[^2], din = a.shape[^1], dout = delta.shape[^1];
        var u = empty([.. a.shape[..^2], r + e, din * dout], a.dtype, a.device);
        for (int i = 0; i < r; i++) u.select(-2, i).copy_(bases[i].flatten(-2));
        Matrices(u.narrow(-2, r, e), din, dout).copy_(a.unsqueeze(-1).expand([.. a.shape, dout])).mul_(delta.unsqueeze(-2));
        return u;
    }

    /// <summary>[..., in·out] → [..., in, out].</summary>
    static Tensor Matrices(Tensor rows, long din, long dout) => rows.unflatten(rows.dim() - 1, [din, dout]);

    sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => nameof(PerTokenWeights);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (map, c, a, delta, x) = ((PerTokenMap)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], vars[4] as Tensor);
            var bases = vars.Skip(5).Cast<Tensor>().ToArray();
            ctx.save_for_backward([c, a, delta, x!, .. bases]);
            ctx.save_data("map", map);
            ctx.save_data("bases", bases.Length);
            ctx.set_materialize_grads(false);                                               // see Recompute
            using var scope = NewDisposeScope();
            return map.Forward(Materialise(c, bases, a, delta), x).MoveToOuterDisposeScope();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            Runtime.BackwardResults.Release();
            if (grad.IsInvalid) return [.. Enumerable.Repeat<Tensor>(null!, 5 + (int)ctx.get_data("bases"))];
            using var scope = NewDisposeScope();
            var map = (PerTokenMap)ctx.get_data("map");
            var saved = ctx.get_saved_variables();
            var (c, a, delta, x) = (saved[0], saved[1], saved[2], saved[3]);
            var bases = saved.Skip(4).ToArray();
            int r = bases.Length;
            long din = a.shape[^1], dout = delta.shape[^1];
            var u = Rows(bases, a, delta);                                                  // [B, H, R + E, P]
            var (g, dx) = map.Backward(Matrices(c.matmul(u), din, dout), x, grad);         // ∂/∂M_t [B, H, n, in, out]
            var gFlat = g.flatten(-2);                                                      // [B, H, n, P]
            var dc = gFlat.matmul(u.transpose(-1, -2));                                     // ∂/∂C = G Uᵀ   [B, H, n, R + E]
            // ∂/∂U = Cᵀ G, the bases' rows and the writers' apart (each its own tensor: nothing returned views the rest).
            Tensor CoefficientsT(int start, long count) => c.narrow(-1, start, count).transpose(-1, -2);
            var dUpdates = Matrices(CoefficientsT(r, c.shape[^1] - r).matmul(gFlat), din, dout);  // per writer [B, H, E, in, out]
            var da = dUpdates.matmul(delta.unsqueeze(-1)).squeeze(-1);                      // ∂/∂a_e = dU_e δ_eᵀ
            var dDelta = a.unsqueeze(-2).matmul(dUpdates).squeeze(-2);                      // ∂/∂δ_e = a_e dU_e
            var dBases = Enumerable.Range(0, r).Select(i => Matrices(CoefficientsT(i, 1).matmul(gFlat).squeeze(-2), din, dout));
            return Runtime.BackwardResults.Hand([null, dc, da, dDelta, dx, .. dBases]);
        }
    }
}

/// <summary>
/// A per-token quantity of raw weights M [B, H, n, in, out] that <see cref="PerTokenWeights.Apply"/> computes, with
/// its vector-Jacobian product. Both may overwrite m (it is built for them and dropped after).
/// </summary>
public abstract record PerTokenMap
{
    public abstract Tensor Forward(Tensor m, Tensor? x);

    /// <summary>(∂/∂m, ∂/∂x or null) of Σ grad · Forward(m, x).</summary>
    public abstract (Tensor M, Tensor? X) Backward(Tensor m, Tensor? x, Tensor grad);

    /// <summary>The read through every token's effective weights: y_t = x_t · Effective(M_t) [B, H, n, out].</summary>
    public sealed record Read(Retention Retention) : PerTokenMap
    {
        public override Tensor Forward(Tensor m, Tensor? x) => Retention.ReadPerToken(m, x!);
        public override (Tensor M, Tensor? X) Backward(Tensor m, Tensor? x, Tensor grad) => Retention.ReadPerTokenBackward(m, x!, grad);
    }

    /// <summary>Every token's ℓ_q power sum s_t = Σ|M_t|^q [B, H, n] (ℓ_q retention's normaliser).</summary>
    public sealed record PowerSum(LqRetention Retention) : PerTokenMap
    {
        public override Tensor Forward(Tensor m, Tensor? x) => Retention.PowerSum(m, overwrite: true);
        public override (Tensor M, Tensor? X) Backward(Tensor m, Tensor? x, Tensor grad) => (Retention.PowerSumGradient(m, grad), null);
    }
}
