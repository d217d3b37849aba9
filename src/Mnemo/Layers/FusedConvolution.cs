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
/// about three times as many backward; at a training step's shapes those passes were most of its cost. Here each
/// group of 16 channels runs over every sequence in registers: forward one pass; backward recomputes z, forms
/// dz = dy ⊙ silu'(z) for one sequence, then dx_s = Σ_j w_j ⊙ dz_{s+K−1−j} and dw_j = Σ_t dz_t ⊙ x_{t−K+1+j} from it.
/// The channel groups are split across libtorch's threads (<see cref="CoreTeam"/>), so each weight gradient is summed by
/// one thread in order: the same on every run. Channels of x beyond the taps' pass through unchanged (forward and
/// backward): the memory mixers hand over their whole joined projection, whose output-gate channels are not convolved,
/// and a slice of it would cost a copy forward and a zero-filled full-width gradient backward. fp32 on a CPU with
/// AVX-512, convolved channels a multiple of 16; anything else takes the composed ops, which are also the tests'
/// reference (outputs and every gradient).
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
        public float* Y, DY, DX, DTaps, DBias;

        /// <summary>Channel groups of 16: the convolution's items.</summary>
        public int Groups => C / Lanes;

        /// <summary>The items the threads share: the channel groups, then one per sequence for the channels passed
        /// through (none without them).</summary>
        public int Items => Groups + (W > C ? B : 0);

        /// <summary>Copies sequence b's pass-through channels from one [B, T, W] tensor to another.</summary>
        public void PassThrough(float* from, float* to, int b)
        {
            for (long row = (long)b * T * W, end = row + (long)T * W; row < end; row += W)
                new ReadOnlySpan<float>(from + row + C, W - C).CopyTo(new Span<float>(to + row + C, W - C));
        }

        /// <summary>z_t of a sequence (its first row at xb) at channel offset c: b + Σ_j w_j ⊙ x_{t−K+1+j}, zero padding
        /// before t = 0.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public V Z(float* xb, int t, int c)
        {
            var z = Bias is null ? V.Zero : Vector512.Load(Bias + c);
            for (int j = Math.Max(0, K - 1 - t); j < K; j++)
                z = Vector512.FusedMultiplyAdd(Vector512.Load(Taps + j * C + c), Vector512.Load(xb + (t - K + 1 + j) * W + c), z);
            return z;
        }
    }

    /// <summary>σ(z) = 1 / (1 + e^{−z}).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static V Sigmoid(V z) => V.One / (V.One + Exp(-z));

    sealed class Function : autograd.SingleTensorFunction<Function>
    {
        public override string Name => "ShortConvolution";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, weight, bias) = (((Tensor)vars[0]).contiguous(), (Tensor)vars[1], (vars[2] as Tensor)?.contiguous());
            var taps = weight.squeeze(1).t().contiguous();                               // [K, C]
            var y = empty_like(x);
            var pass = new Pass(x, taps, bias) { Y = Address(y) };
            CoreTeam.For(pass.Items, item =>
            {
                if (item < pass.Groups) Forward(pass, item * Lanes);
                else pass.PassThrough(pass.X, pass.Y, item - pass.Groups);
            });
            ctx.save_for_backward(bias is null ? [x, taps] : [x, taps, bias]);
            return y;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Forward(Pass p, int c)
        {
            for (int b = 0; b < p.B; b++)
            {
                long row = (long)b * p.T * p.W;
                for (int t = 0; t < p.T; t++)
                {
                    var z = p.Z(p.X + row, t, c);
                    (z * Sigmoid(z)).Store(p.Y + row + t * p.W + c);
                }
            }
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
        {
            BackwardResults.Release();
            using var scope = NewDisposeScope();
            var saved = ctx.get_saved_variables();
            var (x, taps, bias) = (saved[0], saved[1], saved.Count > 2 ? saved[2] : null);
            var dy = grad.contiguous();
            var (dx, dtaps) = (empty_like(x), zeros_like(taps));
            var dbias = bias is null ? null : zeros_like(bias);
            var pass = new Pass(x, taps, bias)
            {
                DY = Address(dy), DX = Address(dx), DTaps = Address(dtaps), DBias = dbias is null ? null : Address(dbias),
            };
            CoreTeam.For(pass.Items, () => new float[pass.T * Lanes], (dz, item) =>
            {
                if (item < pass.Groups) Backward(pass, item * Lanes, dz);
                else pass.PassThrough(pass.DY, pass.DX, item - pass.Groups);
            }, _ => { });
            var dweight = dtaps.t().unsqueeze(1).contiguous();                            // [K, C] → [C, 1, K]
            return BackwardResults.Hand([dx, dweight, dbias]);
        }

        /// <summary>One channel group's dx, and its dw and d bias in full (no other thread touches those channels).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Backward(Pass p, int c, float[] scratch)
        {
            int k = p.K;
            Span<V> dw = stackalloc V[k];
            var dbias = V.Zero;
            fixed (float* dz = scratch)
            {
                for (int b = 0; b < p.B; b++)
                {
                    long row = (long)b * p.T * p.W;
                    float* xb = p.X + row;
                    for (int t = 0; t < p.T; t++)
                    {
                        // dz = dy ⊙ silu'(z), silu'(z) = σ (1 + z (1 − σ))
                        var z = p.Z(xb, t, c);
                        var σ = Sigmoid(z);
                        var dzt = Vector512.Load(p.DY + row + t * p.W + c) * σ * (V.One + z * (V.One - σ));
                        dzt.Store(dz + t * Lanes);
                        dbias += dzt;
                        for (int j = Math.Max(0, k - 1 - t); j < k; j++)
                            dw[j] = Vector512.FusedMultiplyAdd(dzt, Vector512.Load(xb + (t - k + 1 + j) * p.W + c), dw[j]);
                    }
                    for (int s = 0; s < p.T; s++)
                    {
                        // x_s feeds z_{s+K−1−j} through tap j
                        var dxs = V.Zero;
                        for (int j = Math.Max(0, s + k - p.T); j < k; j++)
                        {
                            var tap = Vector512.Load(p.Taps + j * p.C + c);
                            dxs = Vector512.FusedMultiplyAdd(tap, Vector512.Load(dz + (s + k - 1 - j) * Lanes), dxs);
                        }
                        dxs.Store(p.DX + row + s * p.W + c);
                    }
                }
            }
            for (int j = 0; j < k; j++) dw[j].Store(p.DTaps + j * p.C + c);
            if (p.DBias != null) dbias.Store(p.DBias + c);
        }
    }
}
