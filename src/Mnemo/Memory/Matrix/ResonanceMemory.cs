using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Inputs of the synaptic-resonance rule in the kernels' layout: q, k [B, T, H, Dk] (k with unit rows), v [B, T, H, Dv],
/// the relevance logits z = w_r·x + b [B, T, H], the resonance weights α [H] (null: no resonance term, and no key
/// trace), log λ [H] (λ in (0, 1)), and the carried key trace C0 [B, H, Dk, Dk] and memory S0 [B, H, Dk, Dv] (null = 0).
/// </summary>
public sealed record ResonanceInputs(Tensor Q, Tensor K, Tensor V, Tensor Relevance, Tensor? Alpha, Tensor LogDecay,
    Tensor? C0 = null, Tensor? S0 = null);

/// <summary>
/// Synaptic resonance as Mnemo builds it (docs/mechanisms.md#synaptic-resonance; the paper gives no equations). Per head,
/// a key trace C records how often each key direction fired, and the fast weights S are written in proportion to a
/// relevance r_t that the trace raises for familiar keys:
/// <code>
/// C_t = λ C_{t−1} + k_tᵀ k_t                     ρ_t = (1 − λ) k_t C_t k_tᵀ  ∈ [1 − λ, 1]
/// r_t = σ(z_t + α ρ_t)                          S_t = (1 − r_t (1 − λ)) S_{t−1} + r_t k_tᵀ v_t      o_t = q_t S_t
/// </code>
/// An irrelevant token (r → 0) neither writes nor decays S. Both recurrences are the gated linear kernel's
/// (S_t = e^{g_t} S_{t−1} + k_tᵀ v_t), so the chunk and step forms run that kernel twice; <see cref="Naive"/> is the
/// per-token reference written out as above.
/// </summary>
public static class ResonanceMemory
{
    /// <summary>The rule in one of the three forms; returns the read o [B, T, H, Dv], the key trace C (null without
    /// resonance) and the memory S.</summary>
    public static (Tensor O, Tensor? C, Tensor S) Run(KernelForm form, ResonanceInputs x, int chunkSize = 64) =>
        form == KernelForm.Naive
            ? Naive(x)
            : Run(x, inputs => MatrixKernels.Run(MatrixKernelKind.GatedLinear, form, inputs, chunkSize));

    /// <summary>The rule on a gated-linear kernel <paramref name="memory"/> (the chunk or step form, or a layer's kernel seam).</summary>
    public static (Tensor O, Tensor? C, Tensor S) Run(ResonanceInputs x, Func<KernelInputs, (Tensor O, Tensor State)> memory)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2];
        var logDecay = x.LogDecay.to(x.Q.dtype);
        var forget = -logDecay.expm1();                                                    // 1 − λ, exact also for λ → 1
        var z = x.Relevance;
        Tensor? trace = null;
        if (x.Alpha is not null)
        {
            // k_t C_t: the trace read with the token's own key (its own write included) [B, T, H, Dk]
            var (read, c) = memory(new KernelInputs(x.K, x.K, x.K, logDecay.expand(b, t, h), null, x.C0));
            var rho = (read * x.K).sum([-1]) * forget;                       // ρ_t [B, T, H]
            z = z + x.Alpha.to(x.Q.dtype) * rho;
            trace = c;
        }
        var r = z.sigmoid();                                                               // r_t [B, T, H]
        var g = (-r * forget).log1p();                                                     // log(1 − r_t(1 − λ))
        var (o, s) = memory(new KernelInputs(x.Q, x.K, x.V * r.unsqueeze(-1), g, null, x.S0));
        return (o.MoveToOuterDisposeScope(), trace?.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>The per-token reference, token by token with explicit outer products (fp64 inputs stay fp64).</summary>
    public static (Tensor O, Tensor? C, Tensor S) Naive(ResonanceInputs x)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        var dtype = x.Q.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        long b = x.Q.shape[0], h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[3];
        var lambda = x.LogDecay.to(dtype).exp().view(1, h, 1, 1);                           // [1, H, 1, 1]
        var c = x.C0?.to(dtype) ?? zeros(b, h, dk, dk, dtype, x.Q.device);
        var s = x.S0?.to(dtype) ?? zeros(b, h, dk, dv, dtype, x.Q.device);
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            var k = x.K.select(1, t).to(dtype).unsqueeze(-2);                              // k_t  [B, H, 1, Dk]
            var v = x.V.select(1, t).to(dtype).unsqueeze(-2);                              // v_t  [B, H, 1, Dv]
            var z = x.Relevance.select(1, t).to(dtype).view(b, h, 1, 1);
            if (x.Alpha is not null)
            {
                c = lambda * c + k.transpose(-1, -2).matmul(k);
                var rho = (1 - lambda) * k.matmul(c).matmul(k.transpose(-1, -2));          // [B, H, 1, 1]
                z = z + x.Alpha.to(dtype).view(1, h, 1, 1) * rho;
            }
            var r = z.sigmoid();
            s = (1 - r * (1 - lambda)) * s + r * k.transpose(-1, -2).matmul(v);
            outputs.Add(x.Q.select(1, t).to(dtype).unsqueeze(-2).matmul(s).squeeze(-2));   // q_t S_t [B, H, Dv]
        }
        var trace = x.Alpha is null ? null : c.MoveToOuterDisposeScope();
        return (stack(outputs, 1).to(x.Q.dtype).MoveToOuterDisposeScope(), trace, s.MoveToOuterDisposeScope());
    }

    static void Validate(ResonanceInputs x)
    {
        MatrixKernels.Validate(MatrixKernelKind.GatedLinear, new KernelInputs(x.Q, x.K, x.V, H0: x.S0), 1);
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], dk = x.Q.shape[3];
        if (!x.Relevance.shape.SequenceEqual(new[] { b, t, h }))
            throw new MnemoException($"relevance must be [{b}, {t}, {h}] like q's [B, T, H], got [{string.Join(", ", x.Relevance.shape)}]");
        if (!x.LogDecay.shape.SequenceEqual(new[] { h }))
            throw new MnemoException($"log_decay must be [{h}] (one per head), got [{string.Join(", ", x.LogDecay.shape)}]");
        if (x.Alpha is not null && !x.Alpha.shape.SequenceEqual(new[] { h }))
            throw new MnemoException($"alpha must be [{h}] (one per head), got [{string.Join(", ", x.Alpha.shape)}]");
        if (x.C0 is not null && (x.Alpha is null || !x.C0.shape.SequenceEqual(new[] { b, h, dk, dk })))
            throw new MnemoException(x.Alpha is null
                ? "c0 is the resonance's key trace: give it only with alpha"
                : $"c0 must be [{b}, {h}, {dk}, {dk}], got [{string.Join(", ", x.C0.shape)}]");
    }
}
