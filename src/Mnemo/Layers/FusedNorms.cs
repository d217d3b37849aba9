using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Mnemo.Runtime;
using TorchSharp;
using static Mnemo.Runtime.FloatLanes;
using static TorchSharp.torch;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace Mnemo.Layers;

/// <summary>
/// The row normalisations every layer runs (RMSNorm with its optional SiLU gate, and the L2 norm of the delta rules'
/// q and k), each as one autograd node whose forward and backward make two passes over each row in SIMD registers
/// (docs/architecture.md#fused-row-norms). Composed from libtorch ops, one norm is 5–7 ops forward and about twice
/// that backward, each a full pass over the tensor; at a training step's small shapes those passes, not arithmetic,
/// were the norms' cost. Only fp32 on the CPU with rows a multiple of 8 long is fused; anything else takes the
/// composed ops, which are also the reference the tests compare these with (outputs and every gradient).
/// </summary>
public static class FusedNorms
{
    const int Lanes = FloatLanes.Width;

    /// <summary>Whether x takes the fused path: fp32 on the CPU, rows (the last dimension) a multiple of 8 long.</summary>
    public static bool Applies(Tensor x) =>
        x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU && x.dim() > 0 && x.shape[^1] % Lanes == 0;

    /// <summary>
    /// RMSNorm over the last dimension with weight w and an optional gate s = silu(gate):
    /// y = x / sqrt(mean(x²) + ε) ⊙ w ⊙ s, or with <paramref name="gateFirst"/> y = RMSNorm(x ⊙ s) ⊙ w.
    /// x and gate [..., D] (same shape), w [D]; x must pass <see cref="Applies"/>.
    /// </summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, Tensor? gate, double eps, bool gateFirst = false)
    {
        if (!Applies(x)) throw new ArgumentException($"fused RMSNorm takes fp32 CPU rows of a multiple of {Lanes}, got {x.dtype} " +
            $"[{string.Join(", ", x.shape)}]", nameof(x));
        if (weight.dtype != ScalarType.Float32 || weight.numel() != x.shape[^1])
            throw new ArgumentException($"weight must be fp32 [{x.shape[^1]}], got {weight.dtype} [{string.Join(", ", weight.shape)}]",
                nameof(weight));
        if (gate is not null && (gate.dtype != ScalarType.Float32 || !gate.shape.SequenceEqual(x.shape)))
            throw new ArgumentException($"gate must be fp32 shaped like x, got {gate.dtype} [{string.Join(", ", gate.shape)}]",
                nameof(gate));
        return Rms.apply(x, weight, gate!, eps, gateFirst);
    }

    /// <summary>
    /// y = scale · x / sqrt(‖x‖₂² + ε) over the last dimension (fla's l2norm, times a constant); x must pass
    /// <see cref="Applies"/>.
    /// </summary>
    public static Tensor L2Norm(Tensor x, double scale, double eps) => Applies(x)
        ? L2.apply(x, scale, eps)
        : throw new ArgumentException($"fused L2 norm takes fp32 CPU rows of a multiple of {Lanes}, got {x.dtype} " +
            $"[{string.Join(", ", x.shape)}]", nameof(x));

    /// <summary>
    /// Runs body(first row, end row, part) over the rows in as many parts as libtorch has threads, on its threads
    /// (<see cref="CoreTeam"/>). The bodies are
    /// compiled fully optimised on first use (AggressiveOptimization): a step calls each only a few times, and the
    /// runtime's unoptimised first tier would run them for hundreds of steps.
    /// </summary>
    static void ForRows(long rows, Action<int, int, int> body)
    {
        int parts = Parts(rows);
        if (parts == 1) body(0, (int)rows, 0);
        else CoreTeam.For(parts, p => body((int)(rows * p / parts), (int)(rows * (p + 1) / parts), p));
    }

    static int Parts(long rows) => (int)Math.Clamp(rows / 256, 1, torch.get_num_threads());

    sealed class Rms : autograd.SingleTensorFunction<Rms>
    {
        public override string Name => nameof(RmsNorm);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, w, gate, eps, gateFirst) = (((Tensor)vars[0]).contiguous(), (Tensor)vars[1], (vars[2] as Tensor)?.contiguous(),
                (double)vars[3], (bool)vars[4]);
            long rows = x.numel() / x.shape[^1];
            var y = empty_like(x);
            var inverseRms = empty(rows, ScalarType.Float32);                 // r = 1 / sqrt(mean(input²) + ε) per row
            using var silu = gate is null ? null : nn.functional.silu(gate);  // libtorch's vectorised exp
            ForRows(rows, (first, end, _) => Forward(x, w, silu, (float)eps, gateFirst, y, inverseRms, first, end));
            ctx.save_for_backward(gate is null ? [x, w, inverseRms] : [x, w, inverseRms, gate]);
            ctx.save_data("first", gateFirst);
            return y;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Forward(Tensor x, Tensor w, Tensor? silu, float eps, bool gateFirst, Tensor y, Tensor inverseRms, int first, int end)
        {
            int d = (int)x.shape[^1];
            ReadOnlySpan<float> xs = Floats(x), ws = Floats(w), ss = silu is null ? default : Floats(silu);
            Span<float> ys = Floats(y), rs = Floats(inverseRms);
            bool before = silu is not null && gateFirst, after = silu is not null && !gateFirst;
            for (int i = first; i < end; i++)
            {
                int row = i * d;
                // the normalised input u: x, or x ⊙ silu(gate) with the gate first
                var squares = V.Zero;
                for (int j = 0; j < d; j += Lanes)
                {
                    var u = before ? Load(xs, row + j) * Load(ss, row + j) : Load(xs, row + j);
                    squares += u * u;
                }
                var r = rs[i] = 1f / MathF.Sqrt(Vector256.Sum(squares) / d + eps);
                for (int j = 0; j < d; j += Lanes)
                {
                    var u = before ? Load(xs, row + j) * Load(ss, row + j) : Load(xs, row + j);
                    var yj = u * r * Load(ws, j);
                    (after ? yj * Load(ss, row + j) : yj).CopyTo(ys.Slice(row + j, Lanes));
                }
            }
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            Runtime.BackwardResults.Release();
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (x, w, inverseRms, gate) = (saved[0], saved[1], saved[2], saved.Count > 3 ? saved[3] : null);
            bool gateFirst = (bool)ctx.get_data("first");
            var dy = grad.contiguous();
            int d = (int)x.shape[^1];
            long rows = x.numel() / d;
            var dx = empty_like(x);
            var dgate = gate is null ? null : empty_like(gate);
            var sigmoid = gate?.sigmoid();
            var dwParts = new float[Parts(rows)][];                            // each part's Σ over its rows, summed in order below
            ForRows(rows, (first, end, part) =>
                dwParts[part] = Backward(x, w, inverseRms, gate, sigmoid, gateFirst, dy, dx, dgate, first, end));
            var dw = new float[d];
            foreach (var part in dwParts)
                for (int j = 0; j < d; j++) dw[j] += part[j];
            return Runtime.BackwardResults.Hand([dx, tensor(dw, ScalarType.Float32), dgate, null, null]);
        }

        /// <summary>dx and d gate of rows [first, end); returns their part of d weight.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static float[] Backward(Tensor x, Tensor w, Tensor inverseRms, Tensor? gate, Tensor? sigmoid, bool gateFirst, Tensor dy, Tensor dx,
            Tensor? dgate, int first, int end)
        {
            int d = (int)x.shape[^1];
            ReadOnlySpan<float> xs = Floats(x), ws = Floats(w), rs = Floats(inverseRms), dys = Floats(dy);
            ReadOnlySpan<float> gs = gate is null ? default : Floats(gate), sigmoids = sigmoid is null ? default : Floats(sigmoid);
            Span<float> dxs = Floats(dx), dgs = dgate is null ? default : Floats(dgate);
            bool gated = gate is not null, before = gated && gateFirst, after = gated && !gateFirst;
            var dw = new float[d];
            for (int i = first; i < end; i++)
            {
                int row = i * d;
                float r = rs[i];
                // n = r u is the normalised row, y = n ⊙ w (⊙ s with the gate after); dn = dy ⊙ w (⊙ s) its gradient.
                var dot = V.Zero;                                             // Σ dn ⊙ n
                for (int j = 0; j < d; j += Lanes)
                {
                    var (s, _) = gated ? Silu(gs, sigmoids, row + j) : (V.One, V.Zero);
                    var n = (before ? Load(xs, row + j) * s : Load(xs, row + j)) * r;
                    var dn = Load(dys, row + j) * Load(ws, j);
                    dot += (after ? dn * s : dn) * n;
                }
                float mean = Vector256.Sum(dot) / d;
                for (int j = 0; j < d; j += Lanes)
                {
                    var (s, ds) = gated ? Silu(gs, sigmoids, row + j) : (V.One, V.Zero);
                    var (xj, dyj) = (Load(xs, row + j), Load(dys, row + j));
                    var n = (before ? xj * s : xj) * r;
                    var up = after ? dyj * s : dyj;                           // what multiplies n ⊙ w
                    (Load(dw, j) + up * n).CopyTo(dw.AsSpan(j, Lanes));
                    var du = r * (up * Load(ws, j) - n * mean);               // through the norm: r (dn − n · mean(dn ⊙ n))
                    if (after) (dyj * n * Load(ws, j) * ds).CopyTo(dgs.Slice(row + j, Lanes));
                    if (before)
                    {
                        // u = x ⊙ s: d gate = du ⊙ x ⊙ s', dx = du ⊙ s
                        (du * xj * ds).CopyTo(dgs.Slice(row + j, Lanes));
                        du *= s;
                    }
                    du.CopyTo(dxs.Slice(row + j, Lanes));
                }
            }
            return dw;
        }

        /// <summary>s = silu(g) = g σ and s' = σ (1 + g (1 − σ)) at one vector of gates, from σ = sigmoid(g).</summary>
        static (V S, V Derivative) Silu(ReadOnlySpan<float> g, ReadOnlySpan<float> sigmoid, int at)
        {
            var (gj, σ) = (Load(g, at), Load(sigmoid, at));
            return (gj * σ, σ * (V.One + gj * (V.One - σ)));
        }
    }

    sealed class L2 : autograd.SingleTensorFunction<L2>
    {
        public override string Name => nameof(L2Norm);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, scale, eps) = (((Tensor)vars[0]).contiguous(), (double)vars[1], (double)vars[2]);
            long rows = x.numel() / x.shape[^1];
            var y = empty_like(x);
            var norms = empty(rows, ScalarType.Float32);                      // r = 1 / sqrt(‖x‖₂² + ε) per row
            ForRows(rows, (first, end, _) => Forward(x, scale, eps, y, norms, first, end));
            ctx.save_for_backward([x, norms]);
            ctx.save_data("scale", scale);
            ctx.save_data("eps", eps);
            return y;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Forward(Tensor x, double scale, double eps, Tensor y, Tensor norms, int first, int end)
        {
            int d = (int)x.shape[^1];
            ReadOnlySpan<float> xs = Floats(x);
            Span<float> ys = Floats(y), ns = Floats(norms);
            for (int i = first; i < end; i++)
            {
                int row = i * d;
                var squares = V.Zero;
                for (int j = 0; j < d; j += Lanes) squares += Load(xs, row + j) * Load(xs, row + j);
                float r = ns[i] = (float)(1 / Math.Sqrt(Vector256.Sum(squares) + eps));
                float c = (float)(scale * r);
                for (int j = 0; j < d; j += Lanes) (Load(xs, row + j) * c).CopyTo(ys.Slice(row + j, Lanes));
            }
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            Runtime.BackwardResults.Release();
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (x, norms) = (saved[0], saved[1]);
            var (scale, eps) = ((double)ctx.get_data("scale"), (double)ctx.get_data("eps"));
            var dy = grad.contiguous();
            var dx = empty_like(x);
            ForRows(x.numel() / x.shape[^1], (first, end, _) => Backward(x, norms, scale, eps, dy, dx, first, end));
            return Runtime.BackwardResults.Hand([dx, null, null]);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Backward(Tensor x, Tensor norms, double scale, double eps, Tensor dy, Tensor dx, int first, int end)
        {
            int d = (int)x.shape[^1];
            ReadOnlySpan<float> xs = Floats(x), ns = Floats(norms), dys = Floats(dy);
            Span<float> dxs = Floats(dx);
            for (int i = first; i < end; i++)
            {
                int row = i * d;
                float r = ns[i];
                // y = s r x with r = (‖x‖² + ε)^(−1/2): dx = s r (dy − x (x · dy) r²).
                var dot = V.Zero;
                for (int j = 0; j < d; j += Lanes) dot += Load(xs, row + j) * Load(dys, row + j);
                float c = (float)(scale * r), projection = Vector256.Sum(dot) * r * r;
                for (int j = 0; j < d; j += Lanes)
                    (c * (Load(dys, row + j) - Load(xs, row + j) * projection)).CopyTo(dxs.Slice(row + j, Lanes));
            }
        }
    }
}
