using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Inputs of Mamba-3's state update in the kernels' layout: q = C, k = B [B, T·R, H, N] (before the rotation) and v = x
/// [B, T·R, H, P] with R ranks per token, token t's at rows t·R … t·R + R − 1 (R = 1: SISO; R &gt; 1: MIMO), then per token
/// the log-decay A·Δ [B, T, H], the step Δ [B, T, H], the trapezoid's λ ∈ [0, 1] [B, T, H], the rotation rates θ
/// [B, T, H, A] (A ≤ N/2 pairs of channels rotate) and the carried state (null: a fresh stream).
/// </summary>
public sealed record Mamba3Inputs(Tensor Q, Tensor K, Tensor V, Tensor LogDecay, Tensor Dt, Tensor Trapezoid, Tensor Angles,
    Mamba3State? State = null);

/// <summary>
/// The carried Mamba-3 state: the memory S [B, H, N, P], the previous token's R rotated keys [B, R, H, N] and values
/// [B, R, H, P] (the trapezoid's second write) and the rotation angle Φ [B, H, A] (float64, in [0, 2π)).
/// </summary>
public sealed record Mamba3State(Tensor S, Tensor Key, Tensor Value, Tensor Angle);

/// <summary>
/// Mamba-3's state update (Lahoti et al. 2026, arXiv 2603.15569; docs/mechanisms.md#mamba-3), SISO and MIMO, as
/// state-spaces/mamba's reference steps compute it, per head, with R ranks r per token (SISO: R = 1):
/// <code>
/// Φ_t = Φ_{t−1} + θ_t Δ_t  (mod 2π)         q̃_tr = R(Φ_t) q_tr,  k̃_tr = R(Φ_t) k_tr   (channel pairs (2j, 2j+1), j &lt; A)
/// α_t = e^{A_t Δ_t},  β_t = (1 − λ_t) Δ_t α_t,  γ_t = λ_t Δ_t
/// S_t = α_t S_{t−1} + β_t Σ_r k̃_{t−1,r}ᵀ v_{t−1,r} + γ_t Σ_r k̃_trᵀ v_tr,     y_tr = q̃_tr S_t
/// </code>
/// The trapezoidal rule writes each token twice, at its own step and (with weight β) at the next. Summed, token s enters
/// S_t (t &gt; s) with weight (γ_s + (1 − λ_{s+1}) Δ_{s+1}) Π_{s&lt;r≤t} α_r and S_s with γ_s, so the rule is the gated linear
/// kernel with log-gate A Δ, keys scaled by γ_s + (1 − λ_{s+1}) Δ_{s+1} (the last token of a call: γ_s alone), a
/// correction −(1 − λ_{t+1}) Δ_{t+1} (q̃_t · k̃_t) v_t of each read's own token, and the carried key and value added to
/// the entering state as (1 − λ_0) Δ_0 k̃_{−1}ᵀ v_{−1}. MIMO runs the kernel over the T·R rows, the token's decay on its
/// first row: row (t, r) then holds the token's writes r' ≤ r, so its own-token correction is
/// Σ_{r'} (scale_t [r' &gt; r] − (1 − λ_{t+1}) Δ_{t+1}) (q̃_tr · k̃_tr') v_tr'. The rotation is the complex-valued state:
/// with R(Φ) applied to q and k at their own positions, q̃_t k̃_sᵀ rotates by Φ_t − Φ_s. <see cref="Naive"/> is the
/// per-token reference.
/// </summary>
public static class Mamba3Memory
{
    /// <summary>The rule in one of the three forms; returns y [B, T·R, H, P] (one read per row) and the final state. The step form is the
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
        long rank = Rank(x);
        for (long t = 0; t < x.Dt.shape[1]; t++)
        {
            Tensor At(Tensor v) => v.narrow(1, t, 1);
            Tensor Rows(Tensor v) => v.narrow(1, t * rank, rank);
            var token = new Mamba3Inputs(Rows(x.Q), Rows(x.K), Rows(x.V), At(x.LogDecay), At(x.Dt), At(x.Trapezoid), At(x.Angles), state);
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
        long b = x.Q.shape[0], t = x.Dt.shape[1], h = x.Q.shape[2], rank = Rank(x);
        Tensor Rows(Tensor perToken) => rank == 1 ? perToken : perToken.repeat_interleave(rank, 1);  // [B, T, …] → [B, T·R, …]
        var (dt, trap, v) = (x.Dt.to(dtype), x.Trapezoid.to(dtype), x.V.to(dtype));
        var angle = Angles(x.Angles, dt, x.State?.Angle);                                      // Φ_t [B, T, H, A] float64
        var (q, k) = (Rotate(x.Q.to(dtype), Rows(angle)), Rotate(x.K.to(dtype), Rows(angle))); // q̃, k̃ [B, T·R, H, N]
        // the next token's second write of this one: (1 − λ_{t+1}) Δ_{t+1}, 0 after the call's last token
        var next = nn.functional.pad(((1 - trap) * dt).narrow(1, 1, t - 1), [0, 0, 0, 1]);    // [B, T, H]
        var scale = trap * dt + next;
        Tensor? h0 = null;
        if (x.State is { } s)
        {
            var first = ((1 - trap) * dt).select(1, 0);                                        // (1 − λ_0) Δ_0 [B, H]
            var previous = s.Key.to(dtype).permute(0, 2, 3, 1).matmul(s.Value.to(dtype).transpose(1, 2));  // Σ_r k̃ᵀ v [B, H, N, P]
            h0 = s.S.to(dtype) + first.unsqueeze(-1).unsqueeze(-1) * previous;
        }
        var g = x.LogDecay.to(dtype);                                                          // on each token's first row
        if (rank > 1) g = cat([g.unsqueeze(2), zeros([b, t, rank - 1, h], dtype, g.device)], 2).flatten(1, 2);
        var (o, state) = memory(new KernelInputs(q, k * Rows(scale).unsqueeze(-1), v, g, null, h0));
        // own-token terms: (q̃_tr · k̃_tr') times scale_t [r' > r] − (1 − λ_{t+1}) Δ_{t+1}   [B, T, H, R, R']
        Tensor Ranks(Tensor rows) => rows.view(b, t, rank, h, rows.shape[3]).transpose(2, 3);   // [B, T, H, R, ·]
        var dots = Ranks(q).matmul(Ranks(k).transpose(-1, -2));
        var later = ones(rank, rank, dtype, q.device).triu(1);                                   // [r' > r]
        var own = scale.unsqueeze(-1).unsqueeze(-1) * later - next.unsqueeze(-1).unsqueeze(-1);
        var y = o + (dots * own).matmul(Ranks(v)).transpose(2, 3).reshape(o.shape);
        var final = new Mamba3State(state, k.narrow(1, (t - 1) * rank, rank), v.narrow(1, (t - 1) * rank, rank), angle.select(1, t - 1));
        return (y.to(x.Q.dtype).MoveToOuterDisposeScope(), Outer(final));
    }

    /// <summary>R: the rows of q, k and v per token.</summary>
    static long Rank(Mamba3Inputs x) => x.Q.shape[1] / Math.Max(1, x.Dt.shape[1]);

    /// <summary>Φ_t = Φ_0 + Σ_{s≤t} θ_s Δ_s mod 2π [B, T, H, A], summed in float64 whatever the compute type: the angle
    /// grows without bound before the mod, and an fp32 running sum would lose its low digits within a few hundred tokens.</summary>
    static Tensor Angles(Tensor theta, Tensor dt, Tensor? phi0)
    {
        var phi = (theta.to(ScalarType.Float64) * dt.to(ScalarType.Float64).unsqueeze(-1)).cumsum(1);
        if (phi0 is not null) phi = phi + phi0.to(ScalarType.Float64).unsqueeze(1);
        return phi - 2 * Math.PI * (phi / (2 * Math.PI)).floor();
    }

    /// <summary>Rotates the channel pairs (2j, 2j + 1), j &lt; A, of x [B, T, H, N] by the angles Φ [B, T, H, A]; the other
    /// channels pass unrotated.</summary>
    static Tensor Rotate(Tensor x, Tensor angle)
    {
        long a = angle.shape[^1], n = x.shape[^1];
        var (cos, sin) = (angle.cos().to(x.dtype), angle.sin().to(x.dtype));
        var pairs = x.narrow(-1, 0, 2 * a).unflatten(x.dim() - 1, [a, 2]);                      // [B, T, H, A, 2]
        var (even, odd) = (pairs.select(-1, 0), pairs.select(-1, 1));
        var rotated = stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2);  // [B, T, H, 2A]
        return 2 * a == n ? rotated : cat([rotated, x.narrow(-1, 2 * a, n - 2 * a)], -1);
    }

    /// <summary>The per-token reference: Φ, the rotations and the two writes token by token as the equations above.</summary>
    public static (Tensor Y, Mamba3State State) Naive(Mamba3Inputs x)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], h = x.Q.shape[2], n = x.Q.shape[3], p = x.V.shape[3], a = x.Angles.shape[3], rank = Rank(x);
        var s = x.State?.S.to(dtype) ?? zeros(b, h, n, p, dtype, x.Q.device);
        var key = x.State?.Key.to(dtype) ?? zeros([b, rank, h, n], dtype, x.Q.device);
        var value = x.State?.Value.to(dtype) ?? zeros([b, rank, h, p], dtype, x.Q.device);
        var phi = x.State?.Angle.to(ScalarType.Float64) ?? zeros(b, h, a, ScalarType.Float64, x.Q.device);
        static Tensor Writes(Tensor keys, Tensor values) =>                                    // Σ_r k_rᵀ v_r [B, H, N, P]
            keys.permute(0, 2, 3, 1).matmul(values.transpose(1, 2));
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Dt.shape[1]; t++)
        {
            Tensor At(Tensor v) => v.select(1, t).to(dtype);
            Tensor Rows(Tensor v) => v.narrow(1, t * rank, rank).to(dtype);                     // token t's ranks [B, R, H, ·]
            var (dt, lambda) = (At(x.Dt), At(x.Trapezoid));                                    // [B, H]
            phi = phi + x.Angles.select(1, t).to(ScalarType.Float64) * x.Dt.select(1, t).to(ScalarType.Float64).unsqueeze(-1);
            phi = phi - 2 * Math.PI * (phi / (2 * Math.PI)).floor();
            var q = Rotate(Rows(x.Q), phi.unsqueeze(1));                                         // q̃_tr [B, R, H, N]
            var k = Rotate(Rows(x.K), phi.unsqueeze(1));
            var v = Rows(x.V);
            var alpha = At(x.LogDecay).exp();
            var (beta, gamma) = ((1 - lambda) * dt * alpha, lambda * dt);
            s = alpha.view(b, h, 1, 1) * s + beta.view(b, h, 1, 1) * Writes(key, value) + gamma.view(b, h, 1, 1) * Writes(k, v);
            outputs.Add(q.transpose(1, 2).matmul(s).transpose(1, 2));                           // q̃_tr S_t [B, R, H, P]
            (key, value) = (k, v);
        }
        return (cat(outputs, 1).to(x.Q.dtype).MoveToOuterDisposeScope(), Outer(new Mamba3State(s, key, value, phi)));
    }

    static Mamba3State Outer(Mamba3State s) => new(s.S.MoveToOuterDisposeScope(), s.Key.MoveToOuterDisposeScope(),
        s.Value.MoveToOuterDisposeScope(), s.Angle.MoveToOuterDisposeScope());

    static void Validate(Mamba3Inputs x)
    {
        MatrixKernels.Validate(MatrixKernelKind.GatedLinear, new KernelInputs(x.Q, x.K, x.V, H0: x.State?.S), 1);
        long b = x.Q.shape[0], rows = x.Q.shape[1], h = x.Q.shape[2], n = x.Q.shape[3], p = x.V.shape[3];
        long t = x.Dt.dim() > 1 ? x.Dt.shape[1] : 0;
        if (t == 0) throw new MnemoException("Mamba-3 needs at least one token");
        static string Shape(Tensor v) => $"[{string.Join(", ", v.shape)}]";
        if (rows % t != 0)
            throw new MnemoException($"q, k and v must have R rows per token (T·R, T = {t} from dt), got {rows} rows");
        long rank = rows / t;
        foreach (var (name, gate) in new[] { ("log_decay", x.LogDecay), ("dt", x.Dt), ("trapezoid", x.Trapezoid) })
            if (!gate.shape.SequenceEqual(new[] { b, t, h }))
                throw new MnemoException($"{name} must be [{b}, {t}, {h}] (one per token and head; T from dt), got {Shape(gate)}");
        long a = x.Angles.dim() == 4 ? x.Angles.shape[3] : -1;
        if (a < 1 || 2 * a > n || !x.Angles.shape.Take(3).SequenceEqual(new[] { b, t, h }))
            throw new MnemoException($"angles must be [{b}, {t}, {h}, A] with 1 ≤ A ≤ {n / 2} (half the key width), got " +
                Shape(x.Angles));
        if (x.State is { } s)
        {
            if (!s.Key.shape.SequenceEqual(new[] { b, rank, h, n }))
                throw new MnemoException($"the carried keys must be [{b}, {rank}, {h}, {n}], got {Shape(s.Key)}");
            if (!s.Value.shape.SequenceEqual(new[] { b, rank, h, p }))
                throw new MnemoException($"the carried values must be [{b}, {rank}, {h}, {p}], got {Shape(s.Value)}");
            if (!s.Angle.shape.SequenceEqual(new[] { b, h, a }))
                throw new MnemoException($"the carried angle must be [{b}, {h}, {a}], got {Shape(s.Angle)}");
        }
    }
}
