using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Mnemo.Runtime;
using TorchSharp;
using static Mnemo.Runtime.FloatLanes;
using static TorchSharp.torch;
using V = System.Runtime.Intrinsics.Vector256<float>;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// One decoded token of either matrix kernel as a single pass over each head's state, in SIMD registers
/// (docs/benchmarks.md#fewer-operations-per-decoded-token). Both kernels' steps are
/// <code>S'_ij = a_i S_ij + k_i u_j,   o_j = Σ_i q_i S'_ij</code>
/// with a_i = exp(g) (one gate per head, one per key channel, or 1) and u = v for the gated linear kernel, u = β (v − Σ_i
/// k_i a_i S_ij) for the delta rule and u = v − Σ_i b_i a_i S_ij for the generalized one with erase vector b (a_i = 1
/// there when b reads the state before the decay; a rule with its own transition vector takes the composed step).
/// Composed from libtorch ops a step is about twenty operations on a state of a few
/// kilobytes per head, and at that size each operation costs far more than its arithmetic. Only a step that needs no
/// gradient, in fp32 on the CPU with Dv a multiple of 8, is fused; the composed step is the reference the tests compare
/// it with.
/// </summary>
public static class FusedStep
{
    const int Lanes = FloatLanes.Width;

    /// <summary>Whether a step on these tensors takes the fused path: no gradient, fp32 on the CPU, Dv a multiple of 8.</summary>
    public static bool Applies(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor state) =>
        state.device_type == DeviceType.CPU && v.shape[^1] % Lanes == 0
        && Plain(q) && Plain(k) && Plain(v) && Plain(state) && (g is null || Plain(g)) && (beta is null || Plain(beta));

    static bool Plain(Tensor t) => t.dtype == ScalarType.Float32 && !t.requires_grad;

    /// <summary>The gated linear step: q, k [B, H, Dk], v [B, H, Dv], g null | [B, H] | [B, H, Dk], state [B, H, Dk, Dv].</summary>
    public static (Tensor O, Tensor State) GatedLinear(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor state) =>
        Run(q, k, v, g, null, state);

    /// <summary>The delta step: q, k [B, H, Dk], v [B, H, Dv], g null | [B, H] | [B, H, Dk], beta [B, H] or an erase vector
    /// [B, H, Dk], state [B, H, Dk, Dv].</summary>
    public static (Tensor O, Tensor State) Delta(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor state, Tensor? erase = null,
        bool readBeforeDecay = false) =>
        Run(q, k, v, g, beta, state,
            erase ?? (beta is null ? throw new ArgumentException("the delta step needs beta or an erase vector") : k), readBeforeDecay);

    static (Tensor O, Tensor State) Run(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor state, Tensor? erase = null,
        bool readBeforeDecay = false)
    {
        if (!Applies(q, k, v, g, beta, state) || (erase is not null && !Applies(q, erase, v, g, beta, state)))
            throw new ArgumentException("the fused step takes fp32 CPU tensors without gradients and Dv a multiple of 8");
        using var scope = NewDisposeScope();
        var (qc, kc, vc, sc) = (q.contiguous(), k.contiguous(), v.contiguous(), state.contiguous());
        var (gc, bc, ec) = (g?.contiguous(), beta?.contiguous(), erase?.contiguous());
        var o = empty_like(vc);                                               // [B, H, Dv]
        var next = empty_like(sc);                                            // [B, H, Dk, Dv]
        int heads = (int)(state.shape[0] * state.shape[1]), dk = (int)state.shape[2], dv = (int)state.shape[3];
        int gateWidth = g is null ? 0 : g.dim() == 2 ? 1 : dk;
        Heads(qc, kc, vc, gc, bc, ec, sc, o, next, heads, dk, dv, gateWidth, readBeforeDecay);
        return (o.MoveToOuterDisposeScope(), next.MoveToOuterDisposeScope());
    }

    /// <summary>Every head in turn (a decoded token's state fits in cache; threads would cost more than they save).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Heads(Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta, Tensor? erase, Tensor state, Tensor o, Tensor next,
        int heads, int dk, int dv, int gateWidth, bool readBeforeDecay)
    {
        ReadOnlySpan<float> qs = Floats(q), ks = Floats(k), vs = Floats(v), ss = Floats(state);
        ReadOnlySpan<float> gs = g is null ? default : Floats(g), bs = beta is null ? default : Floats(beta);
        ReadOnlySpan<float> es = erase is null ? default : Floats(erase);
        Span<float> os = Floats(o), ns = Floats(next);
        Span<float> decay = stackalloc float[dk];                               // a_i
        Span<float> u = stackalloc float[dv];                                   // what is written against k
        for (int h = 0; h < heads; h++)
        {
            int key = h * dk, value = h * dv, matrix = h * dk * dv;
            for (int i = 0; i < dk; i++) decay[i] = gateWidth == 0 ? 1f : MathF.Exp(gs[gateWidth == 1 ? h : key + i]);
            vs.Slice(value, dv).CopyTo(u);
            if (erase is not null)
            {
                // the delta rule's write: u = β (v − Σ_i b_i a_i S_i) (b = k), the value minus what the decayed state
                // recalls for the erase vector b; the general rule's b carries its own strength (β = 1)
                float strength = beta is null ? 1f : bs[h];
                for (int j = 0; j < dv; j += Lanes)
                {
                    var recalled = V.Zero;
                    for (int i = 0; i < dk; i++)
                        recalled += Load(ss, matrix + i * dv + j) * (readBeforeDecay ? es[key + i] : es[key + i] * decay[i]);
                    ((Load(u, j) - recalled) * strength).CopyTo(u.Slice(j, Lanes));
                }
            }
            for (int j = 0; j < dv; j += Lanes)
            {
                var uj = Load(u, j);
                var read = V.Zero;
                for (int i = 0; i < dk; i++)
                {
                    int at = matrix + i * dv + j;
                    var s = Load(ss, at) * decay[i] + uj * ks[key + i];         // S'_ij = a_i S_ij + k_i u_j
                    s.CopyTo(ns.Slice(at, Lanes));
                    read += s * qs[key + i];                                    // o_j = Σ_i q_i S'_ij
                }
                read.CopyTo(os.Slice(value + j, Lanes));
            }
        }
    }
}
