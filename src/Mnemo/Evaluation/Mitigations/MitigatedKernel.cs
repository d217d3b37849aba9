using Mnemo.Layers;
using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Evaluation.Mitigations;

/// <summary>
/// Runs a matrix kernel with the evaluation-time options of <see cref="MemoryEvalOptions"/> (Stuffed Mamba's three
/// training-free mitigations, docs/mechanisms.md#state-collapse-mitigations). Forget-more only rescales the inputs
/// (g, v) and keeps the fast chunk form; state normalisation and norm recording run the step form; the window runs
/// the chunk form twice. An instance is one layer's kernel, set through <see cref="IMatrixMemoryLayer.Kernel"/>
/// (<see cref="MemoryEval.Apply(Models.LanguageModel, MemoryEvalOptions)"/>); it keeps the norms it records.
/// </summary>
public sealed class MitigatedKernel(MemoryEvalOptions options) : IMatrixKernel
{
    /// <summary>The read o, the final state and, when recording, ‖S_t‖_F per head [B, T, H].</summary>
    public readonly record struct Result(Tensor O, Tensor State, Tensor? Norms);

    /// <summary>The options every forward of the layer runs with.</summary>
    public MemoryEvalOptions Options { get; } = options;

    /// <summary>‖S_t‖_F per head, [B, T, H], from the latest forward with <see cref="MemoryEvalOptions.RecordStateNorms"/>,
    /// owned outside every dispose scope (disposed when the next recording forward replaces it).</summary>
    public Tensor? LastStateNorms { get; private set; }

    /// <inheritdoc/>
    public (Tensor O, Tensor State) Run(MatrixKernelKind kind, KernelInputs x, int chunkSize, bool streaming)
    {
        var (o, state, norms) = Run(kind, x, chunkSize, Options, streaming);
        if (norms is not null)
        {
            LastStateNorms?.Dispose();
            LastStateNorms = norms.detach().DetachFromDisposeScope();
        }
        return (o, state);
    }

    /// <summary>
    /// A whole sequence (no cache: <paramref name="streaming"/> false, chunk form by default) or a streamed piece
    /// continuing from x.H0 (<paramref name="streaming"/> true, as <see cref="MatrixKernels.Continue"/>).
    /// </summary>
    public static Result Run(MatrixKernelKind kind, KernelInputs x, int chunkSize, MemoryEvalOptions options, bool streaming)
    {
        options.Validate();
        using var scope = NewDisposeScope();
        if (options.ForgetScale != 1 && x.G is not null) x = x with { G = x.G * options.ForgetScale };
        if (options.InsertScale != 1) x = x with { V = x.V * options.InsertScale };
        Result r;
        if (options.Window is { } window)
        {
            if (streaming) throw new MnemoException("the sliding-window mitigation works on whole sequences, not on a streaming cache");
            MatrixKernels.Validate(kind, x, chunkSize);
            var (o, s) = kind == MatrixKernelKind.GatedLinear ? StateDifferenceWindow(x, window, chunkSize)
                : RestartedWindow(kind, x, window, chunkSize);
            r = new Result(o, s, null);
        }
        else if (options.NeedsStepForm)
        {
            MatrixKernels.Validate(kind, x, chunkSize);
            r = NormalisedSteps(kind, x, options.StateNormCap, options.RecordStateNorms);
        }
        else
        {
            var (o, s) = DirectMatrixKernel.Instance.Run(kind, x, chunkSize, streaming);
            r = new Result(o, s, null);
        }
        return new Result(r.O.MoveToOuterDisposeScope(), r.State.MoveToOuterDisposeScope(), r.Norms?.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The step form with S_t ← S_t / max(1, ‖S_t‖_F / τ) after each update (τ null: no cap). The rescaling is one
    /// number per head, so the read q_t S_t is the step's read divided by the same number.
    /// </summary>
    static Result NormalisedSteps(MatrixKernelKind kind, KernelInputs x, double? tau, bool record)
    {
        var dtype = Chunks.ComputeType(x.Q);
        var s = Chunks.InitialState(x.H0, x.Q, x.V, dtype);
        var (qs, ks, vs) = (x.Q.to(dtype).unbind(1), x.K.to(dtype).unbind(1), x.V.to(dtype).unbind(1));
        var (gs, bs) = (x.G?.to(dtype).unbind(1), x.Beta?.to(dtype).unbind(1));
        var (es, @as) = (x.Erase?.to(dtype).unbind(1), x.Transition?.to(dtype).unbind(1));
        var outputs = new Tensor[qs.Length];
        var norms = new Tensor[qs.Length];
        for (int t = 0; t < qs.Length; t++)
        {
            using var step = NewDisposeScope();
            var (o, next) = kind == MatrixKernelKind.Delta
                ? DeltaKernel.Step(qs[t], ks[t], vs[t], gs?[t], bs?[t], s, es?[t], @as?[t], x.ReadBeforeDecay)
                : GatedLinearKernel.Step(qs[t], ks[t], vs[t], gs?[t], s);
            var norm = next.square().sum([-2, -1]).sqrt();                          // ‖S_t‖_F [B, H]
            if (tau is { } cap && !double.IsPositiveInfinity(cap))
            {
                var shrink = (norm / cap).clamp_min(1);                              // max(1, ‖S‖/τ)
                next = next / shrink.unsqueeze(-1).unsqueeze(-1);
                o = o / shrink.unsqueeze(-1);
                norm = norm / shrink;
            }
            outputs[t] = o.MoveToOuterDisposeScope();
            norms[t] = norm.MoveToOuterDisposeScope();
            s = next.MoveToOuterDisposeScope();
        }
        return new Result(stack(outputs, 1).to(x.Q.dtype), s, record ? stack(norms, 1) : null);
    }

    /// <summary>
    /// Exact window for the gated linear rule: o_t = q_t S_t − q_t diag(e^{W_t}) S_{t−r}, W_t = Σ_{i=t−r+1..t} g_i.
    /// The second term is the same kernel run over the first T − r tokens with query q_{t} e^{W_t} placed at
    /// position t − r: the state r tokens back, read by a query decayed across the window.
    /// </summary>
    static (Tensor O, Tensor State) StateDifferenceWindow(KernelInputs x, int r, int chunkSize)
    {
        if (x.H0 is not null) throw new MnemoException("the sliding window starts from an empty memory (no initial state)");
        var (o, s) = GatedLinearKernel.Chunk(x.Q, x.K, x.V, x.G, null, chunkSize);
        long t = x.Q.shape[1];
        if (r >= t) return (o, s);
        long early = t - r;
        Tensor shiftedQ = x.Q.narrow(1, r, early);                                   // q_t for t ≥ r
        Tensor? windowDecay = null;                                                  // e^{W_t}, t ≥ r
        if (x.G is not null)
        {
            // W_t from a float64 running sum: a difference of two totals, safe at these lengths in double.
            var c = x.G.to(ScalarType.Float64).cumsum(1);
            windowDecay = (c.narrow(1, r, early) - c.narrow(1, 0, early)).exp().to(x.Q.dtype);
            shiftedQ = shiftedQ * (x.G.dim() == 3 ? windowDecay.unsqueeze(-1) : windowDecay);
        }
        var (back, sBack) = GatedLinearKernel.Chunk(shiftedQ, x.K.narrow(1, 0, early), x.V.narrow(1, 0, early), x.G?.narrow(1, 0, early),
            null, chunkSize);
        var window = cat([o.narrow(1, 0, r), o.narrow(1, r, early) - back], 1);
        // S_(T−r,T] = S_T − diag(e^{W_T}) S_{T−r}
        var last = windowDecay?.select(1, early - 1).to(s.dtype);
        var dropped = last is null ? sBack : sBack * (last.dim() == 2 ? last.unsqueeze(-1).unsqueeze(-1) : last.unsqueeze(-1));
        return (window, s - dropped);
    }

    /// <summary>
    /// Window by restarts (the delta rule, whose state is not a sum of per-token terms): two copies of the memory,
    /// one restarted from zero at every multiple of r, the other r/2 tokens later; each position reads the copy
    /// that has run longer, so it sees the last r/2 + 1 … r tokens (all of them before the first restart).
    /// </summary>
    static (Tensor O, Tensor State) RestartedWindow(MatrixKernelKind kind, KernelInputs x, int r, int chunkSize)
    {
        if (x.H0 is not null) throw new MnemoException("the sliding window starts from an empty memory (no initial state)");
        long t = x.Q.shape[1];
        int half = r / 2;
        var (oA, sA) = Restarted(kind, x, r, 0, chunkSize);
        var (oB, sB) = Restarted(kind, x, r, half, chunkSize);
        // Copy B restarts at p ≡ r − half (mod r). Position p (m = p mod r) has seen m + 1 tokens in copy A and
        // (m + half) mod r + 1 in copy B, so A has run longer exactly when m ≥ r − half (= half for even r).
        var useA = (arange(t, device: x.Q.device) % r).ge(r - half).view(1, t, 1, 1);
        var o = where(useA, oA, oB);
        return (o, (t - 1) % r >= r - half ? sA : sB);
    }

    /// <summary>The kernel from zero in blocks of r tokens, the first block starting <paramref name="offset"/> tokens
    /// early (zero padding: k = v = 0, g = 0, β = 0, b = a = 0 leave the state unchanged). Returns o [B, T, H, Dv] and the state
    /// of the block holding the last token.</summary>
    static (Tensor O, Tensor State) Restarted(MatrixKernelKind kind, KernelInputs x, int r, int offset, int chunkSize)
    {
        long b = x.Q.shape[0], t = x.Q.shape[1];
        long blocks = (offset + t + r - 1) / r, tail = blocks * r - offset - t;
        Tensor Blocks(Tensor? y)
        {
            var padded = cat([zeros([b, offset, .. y!.shape.Skip(2)], y.dtype, y.device), y,
                zeros([b, tail, .. y.shape.Skip(2)], y.dtype, y.device)], 1);
            return padded.reshape([b * blocks, r, .. y.shape.Skip(2)]);
        }
        Tensor? Optional(Tensor? y) => y is null ? null : Blocks(y);
        var inputs = new KernelInputs(Blocks(x.Q), Blocks(x.K), Blocks(x.V), Optional(x.G), Optional(x.Beta),
            Erase: Optional(x.Erase), Transition: Optional(x.Transition), ReadBeforeDecay: x.ReadBeforeDecay);
        var (o, s) = MatrixKernels.Run(kind, KernelForm.Chunk, inputs, chunkSize);
        var merged = o.reshape([b, blocks * r, .. o.shape.Skip(2)]).narrow(1, offset, t);
        // Block states are final states of whole blocks; the last real token's block is the last block only when
        // the tail padding (which changes nothing) follows it, which it always does.
        var state = s.reshape([b, blocks, .. s.shape.Skip(1)]).select(1, blocks - 1);
        return (merged, state);
    }
}
