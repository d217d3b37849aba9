using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Inputs of the mLSTM rule in the kernels' layout: q, k [B, T, H, Dk] (q already scaled), v [B, T, H, Dv], the input
/// gate's and forget gate's pre-activations ĩ, f̃ [B, T, H], and the carried state (null: a fresh stream).
/// </summary>
public sealed record MlstmInputs(Tensor Q, Tensor K, Tensor V, Tensor InputGate, Tensor ForgetGate, MlstmState? State = null);

/// <summary>
/// The carried mLSTM state: the matrix memory C [B, H, Dk, Dv], the normaliser n [B, H, Dk] and the stabiliser
/// m [B, H], all on the stabilised scale (C = e^{−m} times the unstabilised memory).
/// </summary>
public sealed record MlstmState(Tensor C, Tensor N, Tensor M);

/// <summary>
/// xLSTM's matrix memory (Beck et al. 2024, arXiv 2405.04517; docs/mechanisms.md#mlstm) with exponential input gating
/// and its stabiliser, as NX-AI's mlstm_kernels computes it, per head:
/// <code>
/// m_t = max(log σ(f̃_t) + m_{t−1}, ĩ_t)                                     (m_0 = 0)
/// C_t = e^{log σ(f̃_t) + m_{t−1} − m_t} C_{t−1} + e^{ĩ_t − m_t} k_tᵀ v_t
/// n_t = e^{log σ(f̃_t) + m_{t−1} − m_t} n_{t−1} + e^{ĩ_t − m_t} k_t
/// h_t = q_t C_t / (max(|q_t · n_t|, e^{−m_t}) + 10⁻⁶)
/// </code>
/// Every exponent is ≤ 0, so nothing overflows however large ĩ grows. m depends on the gates alone, so it is computed
/// first (<see cref="Stabilizer"/>), and then the rule is the gated linear kernel with the scalar log-gate
/// g_t = log σ(f̃_t) + m_{t−1} − m_t, keys e^{ĩ_t − m_t} k_t and values [v_t, 1]: the extra column carries n, so one
/// kernel call computes both the read q C and the normaliser q · n. <see cref="Naive"/> is the per-token reference
/// written out as above.
/// </summary>
public static class MlstmMemory
{
    /// <summary>The ε in the denominator, mlstm_kernels' default.</summary>
    public const double Eps = 1e-6;

    /// <summary>The rule in one of the three forms; returns h [B, T, H, Dv] and the final state. The step form is the
    /// streaming path, one token per call carrying the state.</summary>
    public static (Tensor H, MlstmState State) Run(KernelForm form, MlstmInputs x, int chunkSize = 64)
    {
        if (form == KernelForm.Naive) return Naive(x);
        if (form == KernelForm.Chunk)
            return Run(x, inputs => MatrixKernels.Run(MatrixKernelKind.GatedLinear, form, inputs, chunkSize), chunkSize);
        Validate(x);
        using var scope = NewDisposeScope();
        var state = x.State;
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            var token = new MlstmInputs(x.Q.narrow(1, t, 1), x.K.narrow(1, t, 1), x.V.narrow(1, t, 1), x.InputGate.narrow(1, t, 1),
                x.ForgetGate.narrow(1, t, 1), state);
            (var h, state) = Run(token, inputs => MatrixKernels.Continue(MatrixKernelKind.GatedLinear, inputs, chunkSize), chunkSize);
            outputs.Add(h);
        }
        return (cat(outputs, 1).MoveToOuterDisposeScope(), Outer(state!));
    }

    /// <summary>The rule on a gated-linear kernel <paramref name="memory"/> (the chunk or step form, or a layer's kernel seam).</summary>
    public static (Tensor H, MlstmState State) Run(MlstmInputs x, Func<KernelInputs, (Tensor O, Tensor State)> memory,
        int chunkSize = 64)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], h = x.Q.shape[2], dv = x.V.shape[3];
        var logF = nn.functional.logsigmoid(x.ForgetGate.to(dtype));                   // log f_t [B, T, H]
        var logI = x.InputGate.to(dtype);
        var m0 = x.State?.M.to(dtype) ?? zeros(b, h, dtype, x.Q.device);
        var m = Stabilizer(logF, logI, m0, chunkSize);                                 // m_t [B, T, H]
        var before = cat([m0.unsqueeze(1), m.narrow(1, 0, m.shape[1] - 1)], 1);        // m_{t−1}
        var g = logF + before - m;                                                     // ≤ 0
        var k = x.K.to(dtype) * (logI - m).exp().unsqueeze(-1);                        // e^{ĩ_t − m_t} k_t
        var v = cat([x.V.to(dtype), ones_like(x.V.narrow(-1, 0, 1), dtype)], -1);      // [v_t, 1]  [B, T, H, Dv + 1]
        var h0 = x.State is { } s ? cat([s.C.to(dtype), s.N.to(dtype).unsqueeze(-1)], -1) : null;  // [C | n]  [B, H, Dk, Dv + 1]
        var (o, state) = memory(new KernelInputs(x.Q.to(dtype), k, v, g, null, h0));
        var read = Normalise(o.narrow(-1, 0, dv), o.narrow(-1, dv, 1), m.unsqueeze(-1));
        var final = new MlstmState(state.narrow(-1, 0, dv), state.select(-1, dv), m.select(1, m.shape[1] - 1));
        return (read.to(x.Q.dtype).MoveToOuterDisposeScope(), Outer(final));
    }

    /// <summary>q C / (max(|q · n|, e^{−m}) + ε): the read [.., Dv] from the numerator, the normaliser q · n [.., 1] and
    /// m [.., 1].</summary>
    static Tensor Normalise(Tensor numerator, Tensor normaliser, Tensor m) =>
        numerator / (maximum(normaliser.abs(), (-m).exp()) + Eps);

    /// <summary>
    /// m_t = max(log f_t + m_{t−1}, ĩ_t) for every token, from log f, ĩ [B, T, H] and m_0 [B, H], in chunks of C tokens:
    /// inside a chunk m_t = max(m_in + Σ_{s≤t} log f_s, max_{s≤t}(ĩ_s + Σ_{s&lt;r≤t} log f_r)), the segment sums taken
    /// column-wise (<see cref="Chunks.ColumnSums"/>), never as differences of running sums, so the max is exact to
    /// rounding however strong the decay; only the m entering each chunk is carried in a loop.
    /// </summary>
    public static Tensor Stabilizer(Tensor logF, Tensor logI, Tensor m0, int chunkSize)
    {
        using var scope = NewDisposeScope();
        long t = logF.shape[1], c = Math.Clamp(t, 1, chunkSize);
        var dtype = logF.dtype;
        var f = Chunks.SplitScalar(logF, c, dtype);                                   // [B, H, N, C]
        var i = Chunks.SplitScalar(logI, c, dtype);
        var segments = Chunks.ColumnSums(f).masked_fill(Chunks.Upper(c, 0, f.device), double.NegativeInfinity);  // [.., C(t), C(s)]
        var written = (i.unsqueeze(-2) + segments).amax([-1]);                         // max_{s≤t}(ĩ_s + Σ_{s<r≤t} log f_r)
        var decayed = f.cumsum(-1);                                                    // Σ_{s≤t} log f_s
        var (ws, ds) = (written.unbind(2), decayed.unbind(2));
        var chunks = new Tensor[ws.Length];
        var entering = m0;
        for (int n = 0; n < chunks.Length; n++)
        {
            chunks[n] = maximum(entering.unsqueeze(-1) + ds[n], ws[n]);               // [B, H, C]
            entering = chunks[n].select(-1, c - 1);
        }
        var m = stack(chunks, 2);                                                      // [B, H, N, C]
        return Chunks.Merge(m.unsqueeze(-1), t).squeeze(-1).MoveToOuterDisposeScope(); // [B, T, H]
    }

    /// <summary>The per-token reference: C, n and m token by token as the equations above (fp64 inputs stay fp64).</summary>
    public static (Tensor H, MlstmState State) Naive(MlstmInputs x)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[3];
        var c = x.State?.C.to(dtype) ?? zeros(b, h, dk, dv, dtype, x.Q.device);
        var n = x.State?.N.to(dtype) ?? zeros(b, h, dk, dtype, x.Q.device);
        var m = x.State?.M.to(dtype) ?? zeros(b, h, dtype, x.Q.device);
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            var (q, k, v) = (x.Q.select(1, t).to(dtype), x.K.select(1, t).to(dtype), x.V.select(1, t).to(dtype));  // [B, H, D]
            var logF = nn.functional.logsigmoid(x.ForgetGate.select(1, t).to(dtype));   // [B, H]
            var logI = x.InputGate.select(1, t).to(dtype);
            var mt = maximum(logF + m, logI);
            var (forget, input) = ((logF + m - mt).exp(), (logI - mt).exp());
            c = forget.view(b, h, 1, 1) * c + input.view(b, h, 1, 1) * k.unsqueeze(-1) * v.unsqueeze(-2);
            n = forget.unsqueeze(-1) * n + input.unsqueeze(-1) * k;
            m = mt;
            var numerator = q.unsqueeze(-2).matmul(c).squeeze(-2);                      // q_t C_t  [B, H, Dv]
            var normaliser = (q * n).sum([-1], keepdim: true);                           // q_t · n_t [B, H, 1]
            outputs.Add(Normalise(numerator, normaliser, m.unsqueeze(-1)));
        }
        return (stack(outputs, 1).to(x.Q.dtype).MoveToOuterDisposeScope(), Outer(new MlstmState(c, n, m)));
    }

    static MlstmState Outer(MlstmState s) =>
        new(s.C.MoveToOuterDisposeScope(), s.N.MoveToOuterDisposeScope(), s.M.MoveToOuterDisposeScope());

    static void Validate(MlstmInputs x)
    {
        MatrixKernels.Validate(MatrixKernelKind.GatedLinear, new KernelInputs(x.Q, x.K, x.V, H0: x.State?.C), 1);
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], dk = x.Q.shape[3];
        foreach (var (name, gate) in new[] { ("input_gate", x.InputGate), ("forget_gate", x.ForgetGate) })
            if (!gate.shape.SequenceEqual(new[] { b, t, h }))
                throw new MnemoException($"{name} must be [{b}, {t}, {h}] like q's [B, T, H], got [{string.Join(", ", gate.shape)}]");
        if (x.State is { } s)
        {
            if (!s.N.shape.SequenceEqual(new[] { b, h, dk }))
                throw new MnemoException($"the normaliser n must be [{b}, {h}, {dk}], got [{string.Join(", ", s.N.shape)}]");
            if (!s.M.shape.SequenceEqual(new[] { b, h }))
                throw new MnemoException($"the stabiliser m must be [{b}, {h}], got [{string.Join(", ", s.M.shape)}]");
        }
        if (t == 0) throw new MnemoException("the mLSTM needs at least one token");
    }
}
