using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Inputs of MesaNet's layer in the kernels' layout: q, k [B, T, H, Dk], v [B, T, H, Dv], the log-decay g [B, T, H], the
/// writing strength β [B, T, H], the regulariser λ [H, Dk] (positive), and the carried states (null: zeros).
/// </summary>
public sealed record MesaInputs(Tensor Q, Tensor K, Tensor V, Tensor G, Tensor Beta, Tensor Lambda, MesaState? State = null);

/// <summary>MesaNet's carried state: H = Σ β k kᵀ [B, H, Dk, Dk] and G = Σ β k vᵀ [B, H, Dk, Dv], both decayed.</summary>
public sealed record MesaState(Tensor H, Tensor G);

/// <summary>
/// MesaNet (von Oswald et al. 2025, "MesaNet: Sequence Modeling by Locally Optimal Test-Time Training", arXiv 2506.05233;
/// docs/mechanisms.md#mesanet), as fla's chunk form computes it, per head:
/// <code>
/// H_t = e^{g_t} H_{t−1} + β_t k_t k_tᵀ,     G_t = e^{g_t} G_{t−1} + β_t k_t v_tᵀ
/// o_t = G_tᵀ x_t,   x_t ≈ (H_t + diag λ)⁻¹ q_t   by n steps of conjugate gradient from x = 0
/// </code>
/// The read is the answer of the regression min_W Σ_s β_s e^{…}‖W k_s − v_s‖² + ‖W‖²_λ, solved at every token.
/// H_t p for every token at once is a gated-linear read with queries p, keys k and values β k, so the chunk form runs
/// each CG step as one call of the gated linear kernel's chunk form, and the final read with values β v. The step form
/// carries H and G explicitly and solves token by token; <see cref="Naive"/> builds every H_t and G_t and solves them
/// all at once. All three run the same CG steps (with fla's 10⁻⁵ guards in both divisions), so they agree to rounding;
/// CG approaches the exact solve as n → Dk.
/// </summary>
public static class MesaMemory
{
    const double Guard = 1e-5;

    /// <summary>The rule in one of the three forms, with <paramref name="steps"/> CG steps; returns o [B, T, H, Dv] and
    /// the final H and G.</summary>
    public static (Tensor O, MesaState State) Run(KernelForm form, MesaInputs x, int steps, int chunkSize = 64)
    {
        Validate(x, steps);
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        var (o, state) = form switch
        {
            KernelForm.Naive => Naive(x, steps, dtype),
            KernelForm.Step => Steps(x, steps, dtype),
            _ => Chunk(x, steps, chunkSize, dtype),
        };
        var final = new MesaState(state.H.MoveToOuterDisposeScope(), state.G.MoveToOuterDisposeScope());
        return (o.to(x.Q.dtype).MoveToOuterDisposeScope(), final);
    }

    /// <summary>
    /// n CG steps for (A + diag λ) x = q from x = 0, where <paramref name="apply"/> computes A p for directions p
    /// [.., Dk]; λ broadcasts against p.
    /// </summary>
    static Tensor Solve(Func<Tensor, Tensor> apply, Tensor q, Tensor lambda, int steps)
    {
        var cg = Start(q);
        for (int i = 0; i < steps; i++) cg = Iterate(apply, cg, lambda);
        return cg.X;
    }

    /// <summary>CG's iterate: the solution x, the residual r, the direction p and δ = r · r.</summary>
    readonly record struct Cg(Tensor X, Tensor R, Tensor P, Tensor Delta);

    /// <summary>From x = 0: r = p = q − (A + λ) · 0.</summary>
    static Cg Start(Tensor q) => new(zeros_like(q), q, q, (q * q).sum([-1]));

    /// <summary>One CG step, with fla's guard in both divisions.</summary>
    static Cg Iterate(Func<Tensor, Tensor> apply, Cg cg, Tensor lambda)
    {
        var (x, r, p, delta) = cg;
        var ap = apply(p) + lambda * p;
        var alpha = delta / ((p * ap).sum([-1]) + Guard);
        x = x + alpha.unsqueeze(-1) * p;
        r = r - alpha.unsqueeze(-1) * ap;
        var next = (r * r).sum([-1]);
        return new(x, r, r + (next / (delta + Guard)).unsqueeze(-1) * p, next);
    }

    /// <summary>
    /// CG through the gated linear kernel's chunk form: H_t p_t for all t is one read with queries p. Each CG step runs
    /// under <see cref="Runtime.Recompute"/>: autograd keeps the step's iterate (x, r, p, δ), not the kernel's chunk
    /// intermediates, and the backward runs the step once more. Without it a training step holds every step's
    /// intermediates at once (13 GB at B = H = 4, T = 2,048, D = 64, 30 steps; docs/benchmarks.md).
    /// </summary>
    static (Tensor O, MesaState State) Chunk(MesaInputs x, int steps, int chunkSize, ScalarType dtype)
    {
        var (q, k, v, g) = (x.Q.to(dtype), x.K.to(dtype), x.V.to(dtype), x.G.to(dtype));
        var beta = x.Beta.to(dtype).unsqueeze(-1);
        var lambda = x.Lambda.to(dtype);                                                       // [H, Dk] broadcasts on [B, T, H, Dk]
        var (kBeta, h0) = (k * beta, x.State?.H.to(dtype));
        Tensor[] CgStep(Tensor?[] a)                                           // (x, r, p, δ, k, βk, g, λ, H0) → (x, r, p, δ, H_T)
        {
            Tensor? finalH = null;
            Tensor Apply(Tensor p)
            {
                var (hp, h) = MatrixKernels.Run(MatrixKernelKind.GatedLinear, KernelForm.Chunk, new KernelInputs(p, a[4]!, a[5]!, a[6]!,
                    null, a[8]), chunkSize);
                finalH = h;
                return hp;
            }
            var next = Iterate(Apply, new Cg(a[0]!, a[1]!, a[2]!, a[3]!), a[7]!);
            return [next.X, next.R, next.P, next.Delta, finalH!];
        }
        var cg = Start(q);
        Tensor? H = null;
        for (int i = 0; i < steps; i++)
        {
            Cg next;
            using (NewDisposeScope())                                          // the step's temporaries die with it
            {
                var s = Runtime.Recompute.Run(CgStep, cg.X, cg.R, cg.P, cg.Delta, k, kBeta, g, lambda, h0);
                next = new Cg(s[0].MoveToOuterDisposeScope(), s[1].MoveToOuterDisposeScope(), s[2].MoveToOuterDisposeScope(),
                    s[3].MoveToOuterDisposeScope());
                H ??= s[4].MoveToOuterDisposeScope();
            }
            // The previous iterate's handles can go (the graph holds what the backward needs); not the start, which is q.
            if (i > 0) foreach (var t in new[] { cg.X, cg.R, cg.P, cg.Delta }) t.Dispose();
            cg = next;
        }
        var (o, finalG) = MatrixKernels.Run(MatrixKernelKind.GatedLinear, KernelForm.Chunk,
            new KernelInputs(cg.X, k, v * beta, g, null, x.State?.G.to(dtype)), chunkSize);
        return (o, new MesaState(H!, finalG));
    }

    /// <summary>Token by token with H and G explicit (what streaming does).</summary>
    static (Tensor O, MesaState State) Steps(MesaInputs x, int steps, ScalarType dtype)
    {
        long b = x.Q.shape[0], h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[3];
        var H = x.State?.H.to(dtype) ?? zeros(b, h, dk, dk, dtype, x.Q.device);
        var G = x.State?.G.to(dtype) ?? zeros(b, h, dk, dv, dtype, x.Q.device);
        var lambda = x.Lambda.to(dtype);                                                       // [H, Dk] broadcasts on [B, H, Dk]
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            Tensor At(Tensor y) => y.select(1, t).to(dtype);
            var (k, decay, beta) = (At(x.K), At(x.G).exp().view(b, h, 1, 1), At(x.Beta).view(b, h, 1, 1));
            H = decay * H + beta * k.unsqueeze(-1) * k.unsqueeze(-2);
            G = decay * G + beta * k.unsqueeze(-1) * At(x.V).unsqueeze(-2);
            var current = H;
            var solution = Solve(p => p.unsqueeze(-2).matmul(current).squeeze(-2), At(x.Q), lambda, steps);   // H is symmetric
            outputs.Add(solution.unsqueeze(-2).matmul(G).squeeze(-2));
        }
        return (stack(outputs, 1), new MesaState(H, G));
    }

    /// <summary>The reference: every H_t and G_t built explicitly ([B, T, H, D, D]), then CG on all tokens at once.</summary>
    static (Tensor O, MesaState State) Naive(MesaInputs x, int steps, ScalarType dtype)
    {
        long b = x.Q.shape[0], h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[3];
        var H = x.State?.H.to(dtype) ?? zeros(b, h, dk, dk, dtype, x.Q.device);
        var G = x.State?.G.to(dtype) ?? zeros(b, h, dk, dv, dtype, x.Q.device);
        var (hs, gs) = (new List<Tensor>(), new List<Tensor>());
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            var k = x.K.select(1, t).to(dtype);
            var decay = x.G.select(1, t).to(dtype).exp().view(b, h, 1, 1);
            var beta = x.Beta.select(1, t).to(dtype).view(b, h, 1, 1);
            H = decay * H + beta * k.unsqueeze(-1) * k.unsqueeze(-2);
            G = decay * G + beta * k.unsqueeze(-1) * x.V.select(1, t).to(dtype).unsqueeze(-2);
            hs.Add(H);
            gs.Add(G);
        }
        var (all, allG) = (stack(hs, 1), stack(gs, 1));                                         // [B, T, H, D, D]
        var solution = Solve(p => p.unsqueeze(-2).matmul(all).squeeze(-2), x.Q.to(dtype), x.Lambda.to(dtype), steps);  // pᵀ H_t
        return (solution.unsqueeze(-2).matmul(allG).squeeze(-2), new MesaState(H, G));
    }

    static void Validate(MesaInputs x, int steps)
    {
        MatrixKernels.Validate(MatrixKernelKind.GatedLinear, new KernelInputs(x.Q, x.K, x.V, x.G, H0: x.State?.G), 1);
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], dk = x.Q.shape[3];
        static string Shape(Tensor y) => $"[{string.Join(", ", y.shape)}]";
        if (steps < 1) throw new MnemoException($"the number of CG steps must be at least 1, got {steps}");
        if (x.G.dim() != 3) throw new MnemoException($"g must be [{b}, {t}, {h}] (one log-decay per head), got {Shape(x.G)}");
        if (!x.Beta.shape.SequenceEqual(new[] { b, t, h })) throw new MnemoException($"beta must be [{b}, {t}, {h}], got {Shape(x.Beta)}");
        if (!x.Lambda.shape.SequenceEqual(new[] { h, dk })) throw new MnemoException($"lambda must be [{h}, {dk}], got {Shape(x.Lambda)}");
        if (x.State is { } s && !s.H.shape.SequenceEqual(new[] { b, h, dk, dk }))
            throw new MnemoException($"the carried H must be [{b}, {h}, {dk}, {dk}], got {Shape(s.H)}");
    }
}
