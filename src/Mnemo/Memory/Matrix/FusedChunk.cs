using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Mnemo.Runtime;
using TorchSharp;
using static Mnemo.Runtime.FloatLanes;
using static Mnemo.Runtime.TileGemm;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// The chunk forms of both matrix kernels with β (the delta rule) or without it (the gated linear kernel), a per-head
/// log-gate or none (DeltaNet, Gated DeltaNet; linear attention, RetNet, Mamba-2), as one pass per head that keeps each
/// chunk's tiles in cache, with its own backward (docs/mechanisms.md#fused-chunk-kernels). Per chunk, with γ the
/// chunk-local cumulative log-gate, Γ_ij = e^{γ_i − γ_j} (j ≤ i, from segment sums) and X the values the chunk writes:
/// <code>
/// O = (e^γ ⊙ Q) S + ((Q Kᵀ) ⊙ Γ) X,   S' = e^{γ_C} S + (e^{γ_C − γ} ⊙ K)ᵀ X
/// </code>
/// The gated linear kernel writes X = V. The delta rule writes X = U − W S through the WY form, with
/// A = tril(diag(β) K Kᵀ ⊙ Γ, −1) and L⁻¹ = (I + A)⁻¹:
/// <code>
/// W = L⁻¹ (β e^γ ⊙ K),   U = L⁻¹ (β ⊙ V)
/// </code>
/// The same equations as the composed forms (<see cref="DeltaKernel.ComposedChunk"/>,
/// <see cref="GatedLinearKernel.ComposedChunk"/>), their reference in the tests. The backward walks the chunks in
/// reverse from the states saved at each chunk's start, recomputing the chunk's tiles rather than storing them, and
/// applies the chain rule to each line above (the gradient of L⁻¹ by dA = −tril(dU' Uᵀ + dW' Wᵀ, −1) with
/// dU' = L⁻ᵀ dU, dW' = L⁻ᵀ dW). fp32 on a CPU with AVX-512 only, head sizes multiples of 16 (the chunk is rounded up to
/// one); heads run in parallel on libtorch's thread count.
/// </summary>
public static unsafe class FusedChunk
{
    /// <summary>Off: every call takes the composed form (for measuring one against the other).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("MNEMO_FUSED_CHUNK") != "off";

    /// <summary>Whether the fused pass runs in this process, and if not why: for `mnemo info` and benchmark reports.</summary>
    public static string Status =>
        !TileGemm.Supported ? "off: .NET does not run Vector512 in hardware on this CPU; the composed forms run"
        : !Enabled ? "off: MNEMO_FUSED_CHUNK=off; the composed forms run"
        : "on (AVX-512): both matrix kernels' chunk forms with a gate per head or none, in fp32";

    /// <summary>Whether <see cref="DeltaKernel.Chunk"/> with these arguments takes the fused path.</summary>
    public static bool AppliesToDelta(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor? h0, int chunkSize,
        Tensor? erase, Tensor? transition, bool readBeforeDecay) =>
        erase is null && transition is null && !readBeforeDecay && beta is not null && Fits(q, k, v, g, beta, h0, chunkSize);

    /// <summary>Whether <see cref="GatedLinearKernel.Chunk"/> with these arguments takes the fused path: not for a
    /// single chunk, where the composed form is two batched products (Q Kᵀ, then P V) that MKL runs faster than the
    /// pass's fixed costs per chunk (measured at the demo's shape: kernel 2.1–2.4 ms forward composed, 3.0–4.3 fused).</summary>
    public static bool AppliesToGatedLinear(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? h0, int chunkSize) =>
        q.dim() == 4 && q.shape[1] > chunkSize && Fits(q, k, v, g, null, h0, chunkSize);

    /// <summary>fp32 CPU tensors of exactly the kernels' shapes (no broadcasting: the pass reads raw memory), head sizes
    /// multiples of 16, a chunk of at most <see cref="MaxChunk"/>, and every tensor it reads or saves under 2 GB (the
    /// span its address is taken from is int-indexed).</summary>
    static bool Fits(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor? h0, int chunkSize)
    {
        if (!Enabled || !TileGemm.Supported || q.device_type != DeviceType.CPU || q.dim() != 4 || v.dim() != 4) return false;
        long b = q.shape[0], t = q.shape[1], h = q.shape[2], dk = q.shape[3], dv = v.shape[3];
        bool Is(Tensor? x, params long[] shape) => x is null || x.shape.SequenceEqual(shape);
        int c = Rounded(chunkSize);
        long padded = (t + c - 1) / c * c, states = b * h * (padded / c + 1) * dk * dv;
        return chunkSize >= 1 && c <= MaxChunk && dk % Lanes == 0 && dv % Lanes == 0
            && Is(k, b, t, h, dk) && Is(v, b, t, h, dv) && Is(g, b, t, h) && Is(beta, b, t, h) && Is(h0, b, h, dk, dv)
            && new[] { q, k, v, beta, g, h0 }.All(x => x is null || x.dtype == ScalarType.Float32)
            && Math.Max(states, b * padded * h * Math.Max(dk, dv)) * sizeof(float) < int.MaxValue;
    }

    /// <summary>The largest chunk the fused pass takes: its workspace holds eight C × C tiles per worker.</summary>
    public const int MaxChunk = 256;

    /// <summary>The chunk the pass runs: the asked-for size rounded up to whole 16-float vectors. A chunk is only how the
    /// sequence is cut (the padding tokens are no-ops), so this changes rounding, not results; it matters where the
    /// chunk was clamped to a short T.</summary>
    static int Rounded(int chunkSize) => (chunkSize + Lanes - 1) / Lanes * Lanes;

    /// <summary>The delta rule: o [B, T, H, Dv] and the final state [B, H, Dk, Dv]; the layout of <see cref="DeltaKernel"/>.</summary>
    public static (Tensor O, Tensor State) Delta(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor beta, Tensor? h0, int chunkSize) =>
        Run(q, k, v, g, beta, h0, chunkSize);

    /// <summary>The gated linear kernel, in the layout of <see cref="GatedLinearKernel"/>.</summary>
    public static (Tensor O, Tensor State) GatedLinear(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? h0, int chunkSize) =>
        Run(q, k, v, g, null, h0, chunkSize);

    static (Tensor O, Tensor State) Run(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor? h0, int chunkSize)
    {
        chunkSize = Rounded(chunkSize);
        using var scope = NewDisposeScope();
        long b = q.shape[0], t = q.shape[1], h = q.shape[2], dv = v.shape[3];
        long padded = (t + chunkSize - 1) / chunkSize * chunkSize;
        // Zero q, k, v, β and g make the padding tokens no-ops (Chunks); [B, T, H(, D)] → [B, T', H(, D)] contiguous.
        Tensor Pad(Tensor x) => (padded == t ? x : nn.functional.pad(x, x.dim() == 4 ? [0, 0, 0, 0, 0, padded - t] : [0, 0, 0, padded - t]))
            .contiguous();
        var shape = new Sizes(b, padded, h, q.shape[3], dv, chunkSize, beta is not null);
        var inputs = new[] { Pad(q), Pad(k), Pad(v), beta is null ? null : Pad(beta), g is null ? null : Pad(g), h0?.contiguous() };
        bool grad = is_grad_enabled() && inputs.Any(x => x is not null && x.requires_grad);
        var flat = grad ? Function.apply(shape, inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5])
            : Forward(shape, inputs, saveStates: false).Flat;
        var o = flat.narrow(0, 0, shape.Outputs).view(b, padded, h, dv).narrow(1, 0, t);
        // A copy, not a view: a carried state must not keep every output of the call alive.
        var s = flat.narrow(0, shape.Outputs, shape.States).view(b, h, shape.Dk, dv).clone();
        return (o.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    /// <summary>Sizes: batch, padded length, heads, key and value sizes, chunk size; and whether the rule is the delta rule.</summary>
    sealed record Sizes(long B, long T, long H, long Dk, long Dv, long C, bool Delta)
    {
        public long Outputs => B * T * H * Dv;
        public long States => B * H * Dk * Dv;
        public int Chunks => (int)(T / C);
    }

    /// <summary>
    /// The forward over every head: [o flattened, final state flattened] in one tensor (one autograd output), and with
    /// <paramref name="saveStates"/> the state entering each chunk and the last, [B·H, N + 1, Dk, Dv], for the backward.
    /// </summary>
    static (Tensor Flat, Tensor? States) Forward(Sizes shape, Tensor?[] inputs, bool saveStates)
    {
        var flat = empty(shape.Outputs + shape.States, ScalarType.Float32);
        var states = saveStates ? empty([shape.B * shape.H, shape.Chunks + 1, shape.Dk, shape.Dv], ScalarType.Float32) : null;
        var p = new Pointers(inputs, shape) { O = Address(flat), States = states is null ? null : Address(states) };
        float* final = p.O + shape.Outputs;
        RunHeads(shape, (w, bh) => ForwardHead(p, w, bh, final));
        return (flat, states);
    }

    /// <summary>
    /// The gradients of q, k, v, β, g and h0 from those of the outputs and the final state: chunk by chunk in reverse,
    /// carrying dS (the gradient of the state leaving the chunk) to the chunk before.
    /// </summary>
    static Tensor[] Backward(Sizes shape, Tensor?[] inputs, Tensor states, Tensor grad)
    {
        var (dq, dk, dv) = (empty_like(inputs[0]!), empty_like(inputs[1]!), empty_like(inputs[2]!));
        var (dBeta, dg) = (inputs[3] is null ? null : empty_like(inputs[3]!), inputs[4] is null ? null : empty_like(inputs[4]!));
        var dh0 = empty([shape.B, shape.H, shape.Dk, shape.Dv], ScalarType.Float32);
        grad = grad.contiguous();
        var p = new Pointers(inputs, shape)
        {
            States = Address(states), DO = Address(grad), DQ = Address(dq), DK = Address(dk), DV = Address(dv),
            DBeta = dBeta is null ? null : Address(dBeta), DG = dg is null ? null : Address(dg), DH0 = Address(dh0),
        };
        RunHeads(shape, (w, bh) => BackwardHead(p, w, bh));
        return [dq, dk, dv, dBeta!, dg!, dh0];
    }

    /// <summary>One head's chunks in order; the running state lives in the saved states when there are any (slot n is the
    /// state entering chunk n), else in the workspace.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ForwardHead(Pointers p, Workspace w, int bh, float* final)
    {
        var shape = p.Shape;
        int dk = (int)shape.Dk, dv = (int)shape.Dv, size = dk * dv;
        float* s = p.States is null ? w.S : p.States + (long)bh * (shape.Chunks + 1) * size;
        Initial(s, p.H0, bh, size);
        for (int n = 0; n < shape.Chunks; n++)
        {
            var tile = new Tile(shape, p, bh, n);
            float* next = p.States is null ? s : s + size;
            bool fromZero = n == 0 && p.H0 is null;
            Prologue(w, tile, s, fromZero);
            if (next != s) new Span<float>(s, size).CopyTo(new Span<float>(next, size));
            // O = (e^γ ⊙ Q) S + (Q ⋆ K) X, then S' = e^{γ_C} S + (e^{γ_C − γ} ⊙ K)ᵀ X
            if (!fromZero) Multiply(tile.O, tile.Ldv, w.Qg, dk, false, s, dv, tile.C, dk, dv, Into.Set);
            Multiply(tile.O, tile.Ldv, w.P, tile.C, false, w.X, dv, tile.C, tile.C, dv, fromZero ? Into.Set : Into.Add,
                Shape.Lower);
            Scale(next, w.Carry, next, size);
            Multiply(next, dv, w.Kd, dk, true, w.X, dv, dk, tile.C, dv, Into.Add);
            s = next;
        }
        new Span<float>(s, size).CopyTo(new Span<float>(final + (long)bh * size, size));
    }

    /// <summary>One head's chunks in reverse, from the gradient of its final state to that of its initial state.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void BackwardHead(Pointers p, Workspace w, int bh)
    {
        var shape = p.Shape;
        int size = (int)(shape.Dk * shape.Dv);
        float* saved = p.States + (long)bh * (shape.Chunks + 1) * size;
        new Span<float>(p.DO + shape.Outputs + (long)bh * size, size).CopyTo(new Span<float>(w.DS, size));
        for (int n = shape.Chunks - 1; n >= 0; n--)
        {
            var tile = new Tile(shape, p, bh, n);
            float* s = saved + (long)n * size;
            bool fromZero = n == 0 && p.H0 is null;
            // The last chunk's dS is the final state's gradient, zero when only the outputs reach the loss (training).
            bool noStateGradient = n == shape.Chunks - 1 && new Span<float>(w.DS, size).IndexOfAnyExcept(0f) < 0;
            Prologue(w, tile, s, fromZero);
            ChunkBackward(w, tile, s, fromZero, noStateGradient);
            float* entering = w.DS2;
            w.DS2 = w.DS;
            w.DS = entering;
        }
        new Span<float>(w.DS, size).CopyTo(new Span<float>(p.DH0 + (long)bh * size, size));
    }

    static void Initial(float* s, float* h0, int bh, int size)
    {
        if (h0 is null) new Span<float>(s, size).Clear();
        else new Span<float>(h0 + (long)bh * size, size).CopyTo(new Span<float>(s, size));
    }

    /// <summary>
    /// What both passes compute for a chunk from its inputs and entering state S: the gates (γ, e^γ, e^{γ_C − γ}, e^{γ_C},
    /// Γ), e^γ ⊙ Q, e^{γ_C − γ} ⊙ K, Q ⋆ K = (Q Kᵀ) ⊙ Γ and the written values X (V, or the delta rule's
    /// <see cref="WyForm"/>). A chunk <paramref name="fromZero"/> (the first, without h0: every training step at T ≤ C) has
    /// no S to read, and e^γ ⊙ Q is not needed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Prologue(Workspace w, Tile x, float* s, bool fromZero)
    {
        int c = x.C, dk = x.Dk, dv = x.Dv;
        Gates(w, x);
        Transpose(w.Kt, c, x.K, x.Ldk, c, dk);                                // Kᵀ [Dk, C]
        for (int i = 0; i < c; i++)
        {
            Scale(w.Kd + i * dk, w.Ew[i], x.K + i * x.Ldk, dk);                // e^{γ_C − γ} ⊙ K
            if (!fromZero) Scale(w.Qg + i * dk, w.Eg[i], x.Q + i * x.Ldk, dk); // e^γ ⊙ Q
        }
        if (x.Delta) WyForm(w, x, s, fromZero);
        else
            for (int i = 0; i < c; i++) new Span<float>(x.V + i * x.Ldv, dv).CopyTo(new Span<float>(w.X + i * dv, dv));
        Multiply(w.P, c, x.Q, x.Ldk, false, w.Kt, c, c, dk, c, Into.Set);     // Q Kᵀ
        for (int i = 0; i < c; i++) Hadamard(w.P + i * c, w.P + i * c, w.Gamma + i * c, c);
    }

    /// <summary>The delta rule's written values: G = K Kᵀ, A, L⁻¹, U, W and X = U − W S (X = U from the zero state, where
    /// W is not needed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WyForm(Workspace w, Tile x, float* s, bool fromZero)
    {
        int c = x.C, dk = x.Dk, dv = x.Dv;
        Multiply(w.G, c, x.K, x.Ldk, false, w.Kt, c, c, dk, c, Into.Set);     // K Kᵀ
        for (int i = 0; i < c; i++)                                           // A = tril(diag(β) K Kᵀ ⊙ Γ, −1)
        {
            Hadamard(w.A + i * c, w.G + i * c, w.Gamma + i * c, c, w.Beta[i]);   // Γ is 0 above the diagonal
            w.A[i * c + i] = 0;
        }
        // L⁻¹ by forward substitution, row i = e_i − Σ_{j<i} A_ij (row j), 16 rows at a time: what the rows above the
        // block contribute is one product, the rest row by row within the block.
        for (int top = 0; top < c; top += Lanes)
        {
            float* block = w.Li + top * c;
            new Span<float>(block, Lanes * c).Clear();
            if (top > 0) Multiply(block, c, w.A + top * c, c, false, w.Li, c, Lanes, top, c, Into.Subtract);
            for (int i = top; i < top + Lanes; i++)
            {
                float* li = w.Li + i * c, ai = w.A + i * c;
                li[i] = 1;
                for (int j = top; j < i; j++) Scale(li, -ai[j], w.Li + j * c, c, add: true);
            }
        }
        for (int i = 0; i < c; i++)
        {
            Scale(w.Vb + i * dv, w.Beta[i], x.V + i * x.Ldv, dv);             // β ⊙ V
            if (!fromZero) Scale(w.Kb + i * dk, w.Beta[i] * w.Eg[i], x.K + i * x.Ldk, dk);   // β e^γ ⊙ K
        }
        Multiply(w.U, dv, w.Li, c, false, w.Vb, dv, c, c, dv, Into.Set, Shape.Lower);
        new Span<float>(w.U, c * dv).CopyTo(new Span<float>(w.X, c * dv));
        if (fromZero) return;
        Multiply(w.W, dk, w.Li, c, false, w.Kb, dk, c, c, dk, Into.Set, Shape.Lower);
        Multiply(w.X, dv, w.W, dk, false, s, dv, c, dk, dv, Into.Subtract);  // X = U − W S
    }

    /// <summary>
    /// The chunk's per-token gates: β, γ_i = Σ_{m≤i} g_m, e^γ, e^{γ_C − γ} (suffix sums, so small sums near the end stay
    /// exact), e^{γ_C}, and Γ_ij = exp(Σ_{j&lt;m≤i} g_m) below the diagonal, 1 on it, 0 above, each segment sum built
    /// down its column as in <see cref="Chunks.ColumnSums"/> rather than as a difference of running sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Gates(Workspace w, Tile x)
    {
        int c = x.C;
        for (int i = 0; i < c; i++)
        {
            w.Beta[i] = x.Delta ? x.BetaAt(i) : 0;
            w.LogGate[i] = x.GateAt(i);
        }
        if (!x.Gated)                                                          // no decay: Γ is the causal mask
        {
            for (int i = 0; i < c; i++)
            {
                w.Eg[i] = w.Ew[i] = 1;
                new Span<float>(w.Gamma + i * c, i + 1).Fill(1);
                new Span<float>(w.Gamma + i * c + i + 1, c - i - 1).Clear();
            }
            w.Carry = 1;
            return;
        }
        float sum = 0;
        for (int i = 0; i < c; i++) w.Eg[i] = MathF.Exp(sum += w.LogGate[i]);
        float suffix = 0;
        for (int i = c - 1; i >= 0; i--)
        {
            w.Ew[i] = MathF.Exp(suffix);
            suffix += w.LogGate[i];
        }
        w.Carry = MathF.Exp(suffix);
        float* segment = w.Segment;
        new Span<float>(segment, c).Clear();
        for (int i = 0; i < c; i++)
        {
            var gi = Vector512.Create(w.LogGate[i]);
            float* row = w.Gamma + i * c;
            for (int j = 0; j < c; j += Lanes)
            {
                var sums = Vector512.Load(segment + j) + gi;                   // Σ_{j<m≤i} g_m for j < i
                sums.Store(segment + j);
                Exp(sums).Store(row + j);
            }
            segment[i] = 0;                                                    // the empty sum from column i onwards
            row[i] = 1;
            new Span<float>(row + i + 1, c - i - 1).Clear();
        }
    }

    /// <summary>One chunk's backward, after <see cref="Prologue"/>: dS (w.DS) in, dS for the chunk before (w.DS2) out; from
    /// the zero state, every term through S (and W) is zero and skipped, and there is no chunk before; with
    /// <paramref name="noStateGradient"/> (dS = 0) so is every term through dS.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ChunkBackward(Workspace w, Tile x, float* s, bool fromZero, bool noStateGradient)
    {
        int c = x.C, dk = x.Dk, dv = x.Dv, size = dk * dv;
        // g's gradient is gathered without differences of large sums (which would cancel in fp32 under strong decay):
        // what reaches γ_i (a suffix sum: g_m enters every γ_i with i ≥ m), what reaches γ_C − γ_j (a prefix sum: g_m
        // enters for j < m), what reaches γ_C (every m), and E_ij for Γ_ij = exp(Σ_{j<m≤i} g_m) (the rectangle i ≥ m > j).
        Span<float> dGamma = new(w.DGamma, c), dWrite = new(w.DWrite, c), dBeta = new(w.DBeta, c);
        dGamma.Clear();
        dWrite.Clear();
        dBeta.Clear();
        // X feeds the outputs through Q ⋆ K and the state through e^{γ_C − γ} ⊙ K.
        Multiply(w.DX, dv, w.P, c, true, x.DO, x.Ldv, c, c, dv, Into.Set, Shape.Upper);
        if (!noStateGradient) Multiply(w.DX, dv, w.Kd, dk, false, w.DS, dv, c, dk, dv, Into.Add);
        // Q ⋆ K: dP = dO Xᵀ on and below the diagonal; Γ's gradient E_ij = dP_ij P_ij below it.
        Transpose(w.Xt, c, w.X, dv, c, dv);
        Multiply(w.DP, c, x.DO, x.Ldv, false, w.Xt, c, c, dv, c, Into.Set);
        for (int i = 0; i < c; i++)                                           // P and Γ are 0 above the diagonal
        {
            float* dp = w.DP + i * c, e = w.E + i * c;
            Hadamard(e, dp, w.P + i * c, c);
            e[i] = 0;
            Hadamard(dp, dp, w.Gamma + i * c, c);
        }
        Multiply(x.DQ, x.Ldk, w.DP, c, false, x.K, x.Ldk, c, c, dk, Into.Set, Shape.Lower);
        Multiply(x.DK, x.Ldk, w.DP, c, true, x.Q, x.Ldk, c, c, dk, Into.Set, Shape.Upper);
        // (e^γ ⊙ Q) S: d(e^γ ⊙ Q) = dO Sᵀ.
        if (!fromZero)
        {
            Transpose(w.St, dk, s, dv, dk, dv);                               // Sᵀ [Dv, Dk]
            Multiply(w.T1, dk, x.DO, x.Ldv, false, w.St, dk, c, dv, dk, Into.Set);
            for (int i = 0; i < c; i++)
            {
                Scale(x.DQ + i * x.Ldk, w.Eg[i], w.T1 + i * dk, dk, add: true);
                dGamma[i] += Dot(w.T1 + i * dk, w.Qg + i * dk, dk);
            }
        }
        // (e^{γ_C − γ} ⊙ K)ᵀ X: d(e^{γ_C − γ} ⊙ K) = X dSᵀ.
        float dCarry = fromZero || noStateGradient ? 0 : w.Carry * Dot(s, w.DS, size);   // e^{γ_C} S
        if (!noStateGradient)
        {
            Transpose(w.DSt, dk, w.DS, dv, dk, dv);
            Multiply(w.T1, dk, w.X, dv, false, w.DSt, dk, c, dv, dk, Into.Set);
            for (int i = 0; i < c; i++)
            {
                Scale(x.DK + i * x.Ldk, w.Ew[i], w.T1 + i * dk, dk, add: true);
                dWrite[i] = Dot(w.T1 + i * dk, w.Kd + i * dk, dk);
            }
        }
        // dS entering = e^{γ_C} dS + (e^γ ⊙ Q)ᵀ dO (− Wᵀ dX for the delta rule); none before a chunk from the zero state
        if (fromZero) new Span<float>(w.DS2, size).Clear();
        else
        {
            Scale(w.DS2, w.Carry, w.DS, size);
            Multiply(w.DS2, dv, w.Qg, dk, true, x.DO, x.Ldv, dk, c, dv, Into.Add);
        }
        if (x.Delta) WyBackward(w, x, fromZero, dGamma, dBeta);
        else
            for (int i = 0; i < c; i++) new Span<float>(w.DX + i * dv, dv).CopyTo(new Span<float>(x.DV + i * x.Ldv, dv));
        // dg_m = Σ_{i≥m} dγ_i + Σ_{j<m} dWrite_j + dCarry + Σ_{i≥m, j<m} E_ij; the rectangle from column sums taken upwards.
        var columns = new Span<float>(w.Segment, c);
        columns.Clear();
        float read = 0, written = 0;
        for (int j = 0; j < c; j++) w.Prefix[j] = written += j == 0 ? 0 : dWrite[j - 1];   // Σ_{j<m} dWrite_j
        for (int m = c - 1; m >= 0; m--)
        {
            float* e = w.E + m * c;
            float rectangle = 0;
            for (int j = 0; j < m; j++) rectangle += columns[j] += e[j];
            read += dGamma[m];
            x.SetGradients(m, dBeta[m], read + w.Prefix[m] + dCarry + rectangle);
        }
    }

    /// <summary>The delta rule's part of a chunk's backward, from dX (w.DX): the gradients of v and β, the WY form's
    /// share of k's, γ's and S's (−Wᵀ dX into w.DS2), and Γ's through A (into w.E).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WyBackward(Workspace w, Tile x, bool fromZero, Span<float> dGamma, Span<float> dBeta)
    {
        int c = x.C, dk = x.Dk, dv = x.Dv;
        // U = L⁻¹ (β V), W = L⁻¹ (β e^γ K), X = U − W S: dU = dX, −dW = dX Sᵀ (T1),
        // dU' = L⁻ᵀ dU, −dW' = L⁻ᵀ (−dW).
        Multiply(w.DVb, dv, w.Li, c, true, w.DX, dv, c, c, dv, Into.Set, Shape.Upper);
        for (int i = 0; i < c; i++)
        {
            float* dvb = w.DVb + i * dv;
            Scale(x.DV + i * x.Ldv, w.Beta[i], dvb, dv);
            dBeta[i] += Dot(dvb, x.V + i * x.Ldv, dv);
        }
        // dA = −tril(dU' Uᵀ + dW' Wᵀ, −1), then A = β_i (K Kᵀ)_ij Γ_ij: dG, dβ and Γ's gradient.
        Transpose(w.Ut, c, w.U, dv, c, dv);
        Multiply(w.DA, c, w.DVb, dv, false, w.Ut, c, c, dv, c, Into.Set);
        for (int i = 0; i < c * c; i += Lanes) (-Vector512.Load(w.DA + i)).Store(w.DA + i);
        if (!fromZero)
        {
            Multiply(w.DS2, dv, w.W, dk, true, w.DX, dv, dk, c, dv, Into.Subtract);   // − Wᵀ dX
            Multiply(w.T1, dk, w.DX, dv, false, w.St, dk, c, dv, dk, Into.Set);
            Multiply(w.DKbNeg, dk, w.Li, c, true, w.T1, dk, c, c, dk, Into.Set, Shape.Upper);
            for (int i = 0; i < c; i++)
            {
                float* dkb = w.DKbNeg + i * dk, k = x.K + i * x.Ldk;
                dBeta[i] -= w.Eg[i] * Dot(dkb, k, dk);
                Scale(x.DK + i * x.Ldk, -w.Beta[i] * w.Eg[i], dkb, dk, add: true);
                dGamma[i] -= Dot(dkb, w.Kb + i * dk, dk);
            }
            Transpose(w.Wt, c, w.W, dk, c, dk);
            Multiply(w.DA, c, w.DKbNeg, dk, false, w.Wt, c, c, dk, c, Into.Add);
        }
        for (int i = 0; i < c; i++)
        {
            float* da = w.DA + i * c, gi = w.G + i * c;
            da[i] = 0;
            Hadamard(da, da, w.Gamma + i * c, c);                              // dA ⊙ Γ, strictly lower
            dBeta[i] += Dot(da, gi, c);
            Hadamard(w.E + i * c, da, gi, c, w.Beta[i], add: true);           // dA_ij A_ij
            Scale(da, w.Beta[i], da, c);                                       // dG_ij = β_i Γ_ij dA_ij
        }
        Multiply(x.DK, x.Ldk, w.DA, c, false, x.K, x.Ldk, c, c, dk, Into.Add, Shape.Lower);   // dG K
        Multiply(x.DK, x.Ldk, w.DA, c, true, x.K, x.Ldk, c, c, dk, Into.Add, Shape.Upper);    // dGᵀ K
    }

    /// <summary>Runs every head (B·H of them) on libtorch's threads (<see cref="CoreTeam"/>), each with its own workspace.</summary>
    static void RunHeads(Sizes shape, Action<Workspace, int> head) =>
        CoreTeam.For((int)(shape.B * shape.H), () => new Workspace((int)shape.C, (int)shape.Dk, (int)shape.Dv), head, w => w.Dispose());

    /// <summary>The data of the inputs, the outputs and their gradients ([B, T', H, D] and [B, T', H]).</summary>
    sealed class Pointers(Tensor?[] inputs, Sizes shape)
    {
        public readonly Sizes Shape = shape;
        public readonly float* Q = Address(inputs[0]!), K = Address(inputs[1]!), V = Address(inputs[2]!);
        public readonly float* Beta = inputs[3] is null ? null : Address(inputs[3]!);
        public readonly float* G = inputs[4] is null ? null : Address(inputs[4]!), H0 = inputs[5] is null ? null : Address(inputs[5]!);
        public float* O, States, DO, DQ, DK, DV, DBeta, DG, DH0;
    }

    /// <summary>One chunk of one head: its rows in the [B, T', H, D] tensors (row stride H·D) and [B, T', H] gates.</summary>
    readonly struct Tile
    {
        public readonly int C, Dk, Dv, Ldk, Ldv;
        public readonly bool Delta, Gated;
        public readonly float* Q, K, V, O, DO, DQ, DK, DV;
        readonly Pointers _p;
        readonly long _scalar;                                                 // index of the chunk's first token in [B, T', H]

        public Tile(Sizes shape, Pointers p, int bh, int n)
        {
            (C, Dk, Dv, Delta, Gated, _p) = ((int)shape.C, (int)shape.Dk, (int)shape.Dv, shape.Delta, p.G is not null, p);
            (Ldk, Ldv) = ((int)(shape.H * shape.Dk), (int)(shape.H * shape.Dv));
            long b = bh / shape.H, h = bh % shape.H;
            _scalar = (b * shape.T + (long)n * C) * shape.H + h;
            long keyAt = _scalar * shape.Dk, valueAt = _scalar * shape.Dv;
            Q = p.Q + keyAt;
            K = p.K + keyAt;
            V = p.V + valueAt;
            O = p.O is null ? null : p.O + valueAt;
            DO = p.DO is null ? null : p.DO + valueAt;
            DQ = p.DQ is null ? null : p.DQ + keyAt;
            DK = p.DK is null ? null : p.DK + keyAt;
            DV = p.DV is null ? null : p.DV + valueAt;
        }

        public float BetaAt(int i) => _p.Beta[_scalar + i * _p.Shape.H];
        public float GateAt(int i) => _p.G is null ? 0 : _p.G[_scalar + i * _p.Shape.H];

        public void SetGradients(int i, float dBeta, float dGate)
        {
            if (_p.DBeta is not null) _p.DBeta[_scalar + i * _p.Shape.H] = dBeta;
            if (_p.DG is not null) _p.DG[_scalar + i * _p.Shape.H] = dGate;
        }
    }

    /// <summary>A worker's tiles: one aligned native block, carved into the buffers a chunk needs.</summary>
    sealed class Workspace : IDisposable
    {
        readonly void* _block;
        public readonly float* LogGate, Beta, Eg, Ew, Segment, DGamma, DWrite, DBeta, Prefix;
        public readonly float* Gamma, G, A, Li, P, DP, DA, E;                   // [C, C]
        public readonly float* Kt, Wt, Xt, Ut;                                 // [Dk | Dv, C]
        public readonly float* Kb, W, Qg, Kd, T1, DKbNeg;                      // [C, Dk]
        public readonly float* Vb, U, X, DX, DVb;                              // [C, Dv]
        public readonly float* S, St, DSt;                                     // [Dk, Dv], [Dv, Dk]
        public float* DS, DS2;
        public float Carry;

        public Workspace(int c, int dk, int dv)
        {
            long total = 9L * c + 8L * c * c + 2L * dk * c + 2L * dv * c + 6L * c * dk + 5L * c * dv + 5L * dk * dv;
            _block = NativeMemory.AlignedAlloc((nuint)(total * sizeof(float)), 64);
            float* next = (float*)_block;
            float* Take(long n) { var at = next; next += n; return at; }       // every size is a multiple of 16 floats
            LogGate = Take(c);
            Beta = Take(c);
            Eg = Take(c);
            Ew = Take(c);
            Segment = Take(c);
            DGamma = Take(c);
            DWrite = Take(c);
            Prefix = Take(c);
            DBeta = Take(c);
            Gamma = Take(c * c);
            G = Take(c * c);
            A = Take(c * c);
            Li = Take(c * c);
            P = Take(c * c);
            DP = Take(c * c);
            DA = Take(c * c);
            E = Take(c * c);
            Kt = Take(dk * c);
            Wt = Take(dk * c);
            Xt = Take(dv * c);
            Ut = Take(dv * c);
            Kb = Take(c * dk);
            W = Take(c * dk);
            Qg = Take(c * dk);
            Kd = Take(c * dk);
            T1 = Take(c * dk);
            DKbNeg = Take(c * dk);
            Vb = Take(c * dv);
            U = Take(c * dv);
            X = Take(c * dv);
            DX = Take(c * dv);
            DVb = Take(c * dv);
            S = Take(dk * dv);
            St = Take(dk * dv);
            DSt = Take(dk * dv);
            DS = Take(dk * dv);
            DS2 = Take(dk * dv);
        }

        public void Dispose() => NativeMemory.AlignedFree(_block);
    }

    /// <summary>The autograd node: inputs q, k, v, β, g (or null), h0 (or null), all padded and contiguous.</summary>
    sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => nameof(FusedChunk);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var shape = (Sizes)vars[0];
            var inputs = vars.Skip(1).Select(x => x as Tensor).ToArray();
            var (flat, states) = Forward(shape, inputs, saveStates: true);
            ctx.save_for_backward([.. inputs.Select(x => x ?? empty(0)), states!]);   // placeholders keep the indices
            ctx.save_data("shape", shape);
            ctx.save_data("present", inputs.Select(x => x is not null).ToArray());
            ctx.save_data("needs", inputs.Select(x => x is not null && x.requires_grad).ToArray());
            return flat;
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            BackwardResults.Release();
            using var scope = NewDisposeScope();
            var (shape, present, needs) = ((Sizes)ctx.get_data("shape"), (bool[])ctx.get_data("present"), (bool[])ctx.get_data("needs"));
            var saved = ctx.get_saved_variables();
            var inputs = saved.Take(6).Select((x, i) => present[i] ? x : null).ToArray();
            // The engine runs a backward with gradients enabled only for create_graph (second derivatives), which the
            // written-out backward cannot give: then the composed form is run again and differentiated with a graph.
            var gradients = is_grad_enabled() ? Taped(shape, inputs, needs, grad) : Backward(shape, inputs, saved[6], grad);
            return BackwardResults.Hand([null, .. gradients.Select((d, i) => needs[i] ? d : null)]);
        }

        /// <summary>The composed form's gradients with a graph: run on the saved inputs themselves (not detached copies),
        /// so the gradients stay functions of what the user differentiates again.</summary>
        static Tensor?[] Taped(Sizes shape, Tensor?[] inputs, bool[] needs, Tensor grad)
        {
            var (q, k, v, beta, g, h0) = (inputs[0]!, inputs[1]!, inputs[2]!, inputs[3], inputs[4], inputs[5]);
            int c = (int)shape.C;
            var (o, s) = shape.Delta
                ? DeltaKernel.ComposedChunk(q, k, v, g, beta, h0, c)
                : GatedLinearKernel.ComposedChunk(q, k, v, g, h0, c);
            var wrt = inputs.Where((x, i) => x is not null && needs[i]).Cast<Tensor>().ToArray();
            var d = autograd.grad([cat([o.flatten(), s.flatten()])], wrt, [grad], retain_graph: true, create_graph: true,
                allow_unused: true);
            int next = 0;
            return [.. inputs.Select((x, i) => x is not null && needs[i] ? d[next++] : null)];
        }
    }
}
