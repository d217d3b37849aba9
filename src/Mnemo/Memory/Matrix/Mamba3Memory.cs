using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Inputs of Mamba-3's state update in the kernels' layout: q = C, k = B [B, T, H, N] (before the rotation), v = x
/// [B, T, H, P], the log-decay A·Δ [B, T, H], the step Δ [B, T, H], the trapezoid's λ ∈ [0, 1] [B, T, H], the rotation
/// rates θ [B, T, H, R] (R ≤ N/2 pairs of channels rotate) and the carried state (null: a fresh stream).
/// </summary>
public sealed record Mamba3Inputs(Tensor Q, Tensor K, Tensor V, Tensor LogDecay, Tensor Dt, Tensor Trapezoid, Tensor Angles,
    Mamba3State? State = null);

/// <summary>
/// The carried Mamba-3 state: the memory S [B, H, N, P], the previous token's rotated key [B, H, N] and value [B, H, P]
/// (the trapezoid's second write) and the rotation angle Φ [B, H, R] (float64, in [0, 2π)).
/// </summary>
public sealed record Mamba3State(Tensor S, Tensor Key, Tensor Value, Tensor Angle);

/// <summary>
/// Mamba-3's SISO state update (Lahoti et al. 2026, arXiv 2603.15569; docs/mechanisms.md#mamba-3), as
/// state-spaces/mamba's reference step computes it, per head:
/// <code>
/// Φ_t = Φ_{t−1} + θ_t Δ_t  (mod 2π)         q̃_t = R(Φ_t) q_t,  k̃_t = R(Φ_t) k_t   (channel pairs (2j, 2j+1), j &lt; R)
/// α_t = e^{A_t Δ_t},  β_t = (1 − λ_t) Δ_t α_t,  γ_t = λ_t Δ_t
/// S_t = α_t S_{t−1} + β_t k̃_{t−1}ᵀ v_{t−1} + γ_t k̃_tᵀ v_t,     y_t = q̃_t S_t
/// </code>
/// The trapezoidal rule writes each token twice, at its own step and (with weight β) at the next. Summed, token s enters
/// S_t (t &gt; s) with weight (γ_s + (1 − λ_{s+1}) Δ_{s+1}) Π_{s&lt;r≤t} α_r and S_s with γ_s, so the rule is the gated linear
/// kernel with log-gate A Δ, keys scaled by γ_s + (1 − λ_{s+1}) Δ_{s+1} (the last token of a call: γ_s alone), a
/// correction −(1 − λ_{t+1}) Δ_{t+1} (q̃_t · k̃_t) v_t of each read's own token, and the carried key and value added to
/// the entering state as (1 − λ_0) Δ_0 k̃_{−1}ᵀ v_{−1}. The rotation is the complex-valued state: with R(Φ) applied to
/// q and k at their own positions, q̃_t k̃_sᵀ rotates by Φ_t − Φ_s. <see cref="Naive"/> is the per-token reference.
/// </summary>
public static class Mamba3Memory
{
    /// <summary>The rule in one of the three forms; returns y [B, T, H, P] and the final state. The step form is the
    /// streaming path, one token per call carrying the state.</summary>
    public static (Tensor Y, Mamba3State State) Run(KernelForm form, Mamba3Inputs x, int chunkSize = 64)
    {
        if (form == KernelForm.Naive) return Naive(x);
        if (form == KernelForm.Chunk)
            return Run(x, inputs => MatrixKernels.Run(MatrixKernelKind.GatedLinear, form, inputs, chunkSize));
        Validate(x);
        using var scope = NewDisposeScope();
        var state = x.State;
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            Tensor At(Tensor v) => v.narrow(1, t, 1);
            var token = new Mamba3Inputs(At(x.Q), At(x.K), At(x.V), At(x.LogDecay), At(x.Dt), At(x.Trapezoid), At(x.Angles), state);
            (var y, state) = Run(token, inputs => MatrixKernels.Continue(MatrixKernelKind.GatedLinear, inputs, chunkSize));
            outputs.Add(y);
        }
        return (cat(outputs, 1).MoveToOuterDisposeScope(), Outer(state!));
    }

    /// <summary>The rule on a gated-linear kernel <paramref name="memory"/> (the chunk or step form, or a layer's kernel seam).</summary>
    public static (Tensor Y, Mamba3State State) Run(Mamba3Inputs x, Func<KernelInputs, (Tensor O, Tensor State)> memory)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long t = x.Q.shape[1];
        var (dt, trap, v) = (x.Dt.to(dtype), x.Trapezoid.to(dtype), x.V.to(dtype));
        var angle = Angles(x.Angles, dt, x.State?.Angle);                                      // Φ_t [B, T, H, R] float64
        var (q, k) = (Rotate(x.Q.to(dtype), angle), Rotate(x.K.to(dtype), angle));            // q̃, k̃
        // the next token's second write of this one: (1 − λ_{t+1}) Δ_{t+1}, 0 after the call's last token
        var next = nn.functional.pad(((1 - trap) * dt).narrow(1, 1, t - 1), [0, 0, 0, 1]);    // [B, T, H]
        var scale = trap * dt + next;
        Tensor? h0 = null;
        if (x.State is { } s)
        {
            var first = ((1 - trap) * dt).select(1, 0);                                        // (1 − λ_0) Δ_0 [B, H]
            h0 = s.S.to(dtype) + first.unsqueeze(-1).unsqueeze(-1) * s.Key.to(dtype).unsqueeze(-1) * s.Value.to(dtype).unsqueeze(-2);
        }
        var (o, state) = memory(new KernelInputs(q, k * scale.unsqueeze(-1), v, x.LogDecay.to(dtype), null, h0));
        var own = (q * k).sum([-1], keepdim: true) * next.unsqueeze(-1);                      // (1 − λ_{t+1}) Δ_{t+1} q̃_t · k̃_t
        var y = o - own * v;
        var final = new Mamba3State(state, k.select(1, t - 1), v.select(1, t - 1), angle.select(1, t - 1));
        return (y.to(x.Q.dtype).MoveToOuterDisposeScope(), Outer(final));
    }

    /// <summary>Φ_t = Φ_0 + Σ_{s≤t} θ_s Δ_s mod 2π [B, T, H, R], summed in float64 whatever the compute type: the angle
    /// grows without bound before the mod, and an fp32 running sum would lose its low digits within a few hundred tokens.</summary>
    static Tensor Angles(Tensor theta, Tensor dt, Tensor? phi0)
    {
        var phi = (theta.to(ScalarType.Float64) * dt.to(ScalarType.Float64).unsqueeze(-1)).cumsum(1);
        if (phi0 is not null) phi = phi + phi0.to(ScalarType.Float64).unsqueeze(1);
        return phi - 2 * Math.PI * (phi / (2 * Math.PI)).floor();
    }

    /// <summary>Rotates the channel pairs (2j, 2j + 1), j &lt; R, of x [B, T, H, N] by the angles Φ [B, T, H, R]; the other
    /// channels pass unrotated.</summary>
    static Tensor Rotate(Tensor x, Tensor angle)
    {
        long r = angle.shape[^1], n = x.shape[^1];
        var (cos, sin) = (angle.cos().to(x.dtype), angle.sin().to(x.dtype));
        var pairs = x.narrow(-1, 0, 2 * r).unflatten(x.dim() - 1, [r, 2]);                      // [B, T, H, R, 2]
        var (even, odd) = (pairs.select(-1, 0), pairs.select(-1, 1));
        var rotated = stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2);  // [B, T, H, 2R]
        return 2 * r == n ? rotated : cat([rotated, x.narrow(-1, 2 * r, n - 2 * r)], -1);
    }

    /// <summary>The per-token reference: Φ, the rotations and the two writes token by token as the equations above.</summary>
    public static (Tensor Y, Mamba3State State) Naive(Mamba3Inputs x)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], h = x.Q.shape[2], n = x.Q.shape[3], p = x.V.shape[3], r = x.Angles.shape[3];
        var s = x.State?.S.to(dtype) ?? zeros(b, h, n, p, dtype, x.Q.device);
        var key = x.State?.Key.to(dtype) ?? zeros(b, h, n, dtype, x.Q.device);
        var value = x.State?.Value.to(dtype) ?? zeros(b, h, p, dtype, x.Q.device);
        var phi = x.State?.Angle.to(ScalarType.Float64) ?? zeros(b, h, r, ScalarType.Float64, x.Q.device);
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            Tensor At(Tensor v) => v.select(1, t).to(dtype);
            var (dt, lambda) = (At(x.Dt), At(x.Trapezoid));                                    // [B, H]
            phi = phi + x.Angles.select(1, t).to(ScalarType.Float64) * x.Dt.select(1, t).to(ScalarType.Float64).unsqueeze(-1);
            phi = phi - 2 * Math.PI * (phi / (2 * Math.PI)).floor();
            var q = Rotate(x.Q.narrow(1, t, 1).to(dtype), phi.unsqueeze(1)).squeeze(1);        // q̃_t [B, H, N]
            var k = Rotate(x.K.narrow(1, t, 1).to(dtype), phi.unsqueeze(1)).squeeze(1);
            var v = At(x.V);
            var alpha = At(x.LogDecay).exp();
            var (beta, gamma) = ((1 - lambda) * dt * alpha, lambda * dt);
            s = alpha.view(b, h, 1, 1) * s + beta.view(b, h, 1, 1) * key.unsqueeze(-1) * value.unsqueeze(-2)
                + gamma.view(b, h, 1, 1) * k.unsqueeze(-1) * v.unsqueeze(-2);
            outputs.Add(q.unsqueeze(-2).matmul(s).squeeze(-2));                              // q̃_t S_t [B, H, P]
            (key, value) = (k, v);
        }
        return (stack(outputs, 1).to(x.Q.dtype).MoveToOuterDisposeScope(), Outer(new Mamba3State(s, key, value, phi)));
    }

    static Mamba3State Outer(Mamba3State s) => new(s.S.MoveToOuterDisposeScope(), s.Key.MoveToOuterDisposeScope(),
        s.Value.MoveToOuterDisposeScope(), s.Angle.MoveToOuterDisposeScope());

    static void Validate(Mamba3Inputs x)
    {
        MatrixKernels.Validate(MatrixKernelKind.GatedLinear, new KernelInputs(x.Q, x.K, x.V, H0: x.State?.S), 1);
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], n = x.Q.shape[3], p = x.V.shape[3];
        if (t == 0) throw new MnemoException("Mamba-3 needs at least one token");
        static string Shape(Tensor v) => $"[{string.Join(", ", v.shape)}]";
        foreach (var (name, gate) in new[] { ("log_decay", x.LogDecay), ("dt", x.Dt), ("trapezoid", x.Trapezoid) })
            if (!gate.shape.SequenceEqual(new[] { b, t, h }))
                throw new MnemoException($"{name} must be [{b}, {t}, {h}] like q's [B, T, H], got {Shape(gate)}");
        long r = x.Angles.dim() == 4 ? x.Angles.shape[3] : -1;
        if (r < 1 || 2 * r > n || !x.Angles.shape.Take(3).SequenceEqual(new[] { b, t, h }))
            throw new MnemoException($"angles must be [{b}, {t}, {h}, R] with 1 ≤ R ≤ {n / 2} (half the key width), got " +
                Shape(x.Angles));
        if (x.State is { } s)
        {
            if (!s.Key.shape.SequenceEqual(new[] { b, h, n }))
                throw new MnemoException($"the carried key must be [{b}, {h}, {n}], got {Shape(s.Key)}");
            if (!s.Value.shape.SequenceEqual(new[] { b, h, p }))
                throw new MnemoException($"the carried value must be [{b}, {h}, {p}], got {Shape(s.Value)}");
            if (!s.Angle.shape.SequenceEqual(new[] { b, h, r }))
                throw new MnemoException($"the carried angle must be [{b}, {h}, {r}], got {Shape(s.Angle)}");
        }
    }
}
