using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Mnemo.Runtime;
using TorchSharp;
using static Mnemo.Runtime.FloatLanes;
using static TorchSharp.torch;
using V = System.Runtime.Intrinsics.Vector512<float>;

namespace Mnemo.Layers;

/// <summary>
/// The short convolution with its SiLU (<see cref="ShortConvolution.Convolve"/> from the zero state) as one autograd
/// node: y_t = silu(z_t), z_t = b + Σ_j w_j ⊙ x_{t−K+1+j} per channel (docs/architecture.md#the-fused-short-convolution).
/// Composed from libtorch ops it is a pad, K multiply-adds and a SiLU forward, each a full pass over [B, T, C], and
/// about three times as many backward; at a training step's shapes those passes were most of its cost. Here the work
/// items are blocks of rows of one sequence, split across libtorch's threads (<see cref="CoreTeam"/>), and each block
/// goes row by row, 16 channels at a time: forward one pass; backward recomputes z, forms dz = dy ⊙ silu'(z) and sums
/// dw_j = Σ_t dz_t ⊙ x_{t−K+1+j} over its rows, then dx_s = Σ_j w_j ⊙ dz_{s+K−1−j}. Each block's weight gradient is its
/// own partial sum, and the partial sums are added in block order: the same on every run. Channels of x beyond the
/// taps' pass through unchanged (forward and backward): the memory mixers hand over their whole joined projection,
/// whose output-gate channels are not convolved, and a slice of it would cost a copy forward and a zero-filled
/// full-width gradient backward. fp32 on a CPU with AVX-512, convolved channels a multiple of 16; anything else takes
/// the composed ops, which are also the tests' reference (outputs and every gradient).
/// </summary>
public static unsafe class FusedConvolution
{
    const int Lanes = TileGemm.Lanes;

    /// <summary>Whether x [B, T, C + P] with taps w [C, 1, K] (and a bias [C]) takes the fused path.</summary>
    public static bool Applies(Tensor x, Tensor weight, Tensor? bias) =>
        TileGemm.Supported && x.device_type == DeviceType.CPU && x.dim() == 3 && x.shape[1] > 1
        && x.dtype == ScalarType.Float32 && weight.dtype == ScalarType.Float32 && weight.dim() == 3
        && weight.shape[0] % Lanes == 0 && weight.shape[0] <= x.shape[2] && weight.shape[1] == 1
        && (bias is null || bias.dtype == ScalarType.Float32) && x.numel() * sizeof(float) < int.MaxValue;

    /// <summary>silu(causal depthwise convolution of x [B, T, C + P] with w [C, 1, K] (+ bias [C])) on the first C
    /// channels, the last P as they are: [B, T, C + P].</summary>
    public static Tensor Convolve(Tensor x, Tensor weight, Tensor? bias) => Applies(x, weight, bias)
        ? Function.apply(x, weight, bias!)
        : throw new ArgumentException($"the fused short convolution takes fp32 CPU [B, T > 1, C + P] with C a multiple of " +
            $"{Lanes} on a CPU with AVX-512 and taps [C, 1, K], got {x.dtype} [{string.Join(", ", x.shape)}] and " +
            $"[{string.Join(", ", weight.shape)}]", nameof(x));

    /// <summary>The sizes and addresses one call works on; x and the gradients are [B, T, W] contiguous (W = C + P, the
    /// row stride), taps [K, C].</summary>
    sealed class Pass(Tensor x, Tensor taps, Tensor? bias)
    {
        public readonly int B = (int)x.shape[0], T = (int)x.shape[1], W = (int)x.shape[2], C = (int)taps.shape[1],
            K = (int)taps.shape[0];
        public readonly float* X = Address(x), Taps = Address(taps), Bias = bias is null ? null : Address(bias);
        public float* Y, DY, DX;

        /// <summary>The rows of one item, a block of one sequence: at least 64, and no more than about 256 blocks in all
        /// (or one per sequence), so that the weight gradients' partial sums (one [K + 1, C] per item) stay small.</summary>
        public readonly int Rows = (int)Math.Min(x.shape[1], Math.Max(64, (x.shape[0] * x.shape[1] + 255) / 256));

        /// <summary>Blocks per sequence; the items are the blocks of every sequence.</summary>
        public int Blocks => (T + Rows - 1) / Rows;

        public int Items => B * Blocks;

        /// <summary>Item i: the address of its sequence's first row, and its rows [From, To).</summary>
        public (long First, int From, int To) Block(int item)
        {
            int from = item % Blocks * Rows;
            return ((long)(item / Blocks) * T * W, from, Math.Min(T, from + Rows));
        }

        /// <summary>Copies the channels passed through (those beyond C) of the row at offset row.</summary>
        public void PassThrough(float* from, float* to, long row)
        {
            if (W > C) new ReadOnlySpan<float>(from + row + C, W - C).CopyTo(new Span<float>(to + row + C, W - C));
        }
    }

    /// <summary>σ(z) = 1 / (1 + e^{−z}).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static V Sigmoid(V z) => V.One / (V.One + Exp(-z));

    /// <summary>
    /// sum + Σ a_i ⊙ b_i over i = 0 … n − 1, 16 lanes, a_i at a + i·aStride and b_i at b + i·bStride: the taps' sums in
    /// every direction (z_t over x's rows, dx_s over dz's rows backwards). Pointers step rather than being indexed: with K
    /// a run-time value, indexed addresses cost more instructions than the multiply-adds they feed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static V Taps(float* a, long aStride, float* b, long bStride, int n, V sum)
    {
        for (; n > 0; n--, a += aStride, b += bStride) sum = Vector512.FusedMultiplyAdd(Vector512.Load(a), Vector512.Load(b), sum);
        return sum;
    }

    sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => "ShortConvolution";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, weight, bias) = (((Tensor)vars[0]).contiguous(), (Tensor)vars[1], (vars[2] as Tensor)?.contiguous());
            var taps = weight.squeeze(1).t().contiguous();                               // [K, C]
            var y = empty_like(x);
            var pass = new Pass(x, taps, bias) { Y = Address(y) };
            CoreTeam.For(pass.Items, item => Forward(pass, item));
            ctx.save_for_backward(bias is null ? [x, taps] : [x, taps, bias]);
            return y;
        }

        /// <summary>One block of rows, row by row and each row's channels 16 at a time: the rows stream through memory
        /// once, and the K − 1 rows the taps reach back to are still in the first-level cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Forward(Pass p, int item)
        {
            var (first, from, to) = p.Block(item);
            int c = p.C, k = p.K;
            long w = p.W;
            float* taps = p.Taps, bias = p.Bias;
            for (int t = from; t < to; t++)
            {
                // z_t = b + Σ_j w_j ⊙ x_{t−K+1+j}, the rows before t = 0 zero
                int j0 = Math.Max(0, k - 1 - t);
                float* x = p.X + first + (t - k + 1 + j0) * w, y = p.Y + first + t * w;
                for (int g = 0; g < c; g += Lanes)
                {
                    var z = Taps(taps + j0 * c + g, c, x + g, w, k - j0, bias == null ? V.Zero : Vector512.Load(bias + g));
                    (z * Sigmoid(z)).Store(y + g);
                }
                p.PassThrough(p.X, p.Y, first + t * w);
            }
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            BackwardResults.Release();
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (x, taps, bias) = (saved[0], saved[1], saved.Count > 2 ? saved[2] : null);
            var dy = grad.contiguous();
            var dx = empty_like(x);
            var pass = new Pass(x, taps, bias) { DY = Address(dy), DX = Address(dx) };
            // Each item sums its rows' d w_j (rows 0 … K − 1) and d b (row K) into its own [K + 1, C]; those are added in
            // item order below, so the gradients do not depend on which thread ran which item.
            int k = pass.K, c = pass.C, size = (k + 1) * c;
            var partials = zeros(pass.Items, k + 1, c);
            float* sums = Address(partials);
            CoreTeam.For(pass.Items, () => ArrayPool<float>.Shared.Rent((pass.Rows + k - 1) * c), (dz, item) =>
            {
                fixed (float* scratch = dz) Backward(pass, item, scratch, sums + (long)item * size);
            }, dz => ArrayPool<float>.Shared.Return(dz));
            var (dtaps, dbias) = (zeros_like(taps), bias is null ? null : zeros_like(bias));
            float* dw = Address(dtaps), db = dbias is null ? null : Address(dbias);
            for (long item = 0; item < pass.Items; item++)
            {
                TileGemm.Scale(dw, 1, sums + item * size, k * c, add: true);                   // d w += the item's
                if (db != null) TileGemm.Scale(db, 1, sums + item * size + k * c, c, add: true);   // d b += the item's
            }
            var dweight = dtaps.t().unsqueeze(1).contiguous();                            // [K, C] → [C, 1, K]
            return BackwardResults.Hand([dx, dweight, dbias]);
        }

        /// <summary>
        /// One block of rows [from, to) of one sequence, row by row as <see cref="Forward"/>: dz_t = dy_t ⊙ silu'(z_t)
        /// with z_t recomputed, for the block's rows and the K − 1 after it (its dx reaches them), into dz [rows, C]; d w_j
        /// and d b summed over the block's own rows into sums [K + 1, C]; then dx_s = Σ_j w_j ⊙ dz_{s+K−1−j}, the terms past
        /// the sequence's end zero.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Backward(Pass p, int item, float* dz, float* sums)
        {
            var (first, from, to) = p.Block(item);
            int c = p.C, k = p.K, reach = Math.Min(p.T, to + k - 1);
            long w = p.W;
            float* taps = p.Taps, bias = p.Bias, dbias = sums + k * c;
            for (int t = from; t < reach; t++)
            {
                int j0 = Math.Max(0, k - 1 - t);
                float* x = p.X + first + (t - k + 1 + j0) * w, dy = p.DY + first + t * w, dzt = dz + (t - from) * c;
                bool own = t < to;
                for (int g = 0; g < c; g += Lanes)
                {
                    var z = Taps(taps + j0 * c + g, c, x + g, w, k - j0, bias == null ? V.Zero : Vector512.Load(bias + g));
                    var σ = Sigmoid(z);
                    var d = Vector512.Load(dy + g) * σ * (V.One + z * (V.One - σ));      // silu'(z) = σ (1 + z (1 − σ))
                    d.Store(dzt + g);
                    if (!own) continue;
                    float* dw = sums + j0 * c + g, xj = x + g;
                    for (int j = j0; j < k; j++, dw += c, xj += w)
                        Vector512.FusedMultiplyAdd(d, Vector512.Load(xj), Vector512.Load(dw)).Store(dw);
                    (Vector512.Load(dbias + g) + d).Store(dbias + g);
                }
            }
            for (int s = from; s < to; s++)
            {
                // x_s feeds z_{s+K−1−j} through tap j, for j from j0 (the last row the sequence has) to K − 1
                int j0 = Math.Max(0, s + k - p.T);
                float* dzLast = dz + (s + k - 1 - j0 - from) * c, dx = p.DX + first + s * w;
                for (int g = 0; g < c; g += Lanes)
                    Taps(taps + j0 * c + g, c, dzLast + g, -c, k - j0, V.Zero).Store(dx + g);
                p.PassThrough(p.DY, p.DX, first + s * w);
            }
        }
    }
}
