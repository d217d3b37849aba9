using Mnemo.Memory.Matrix;

namespace Mnemo.Benchmarks;

/// <summary>
/// The explicit FLOP model behind every "GFLOP/s" and "fraction of peak" the kernel benchmark reports. It counts
/// only matmul-shaped work (a multiply-add is 2 FLOPs) of the algorithm as written in the papers, per batch row and
/// head; gates, exponentials, masks, the elementwise state decay and other O(C·D) or O(C²) elementwise work are not
/// counted. So the rates are "useful matmul FLOPs per second" and comparable across rules and forms.
///
/// <para><b>Chunk forms</b> (chunk size C, N = ⌈T/C⌉ chunks; a zero-padded last chunk is counted whole, as it is
/// computed whole). Per chunk:</para>
/// <list type="bullet">
/// <item>gated linear (linear attention, scalar gate, per-channel gate/GLA): intra-chunk scores Q·Kᵀ 2·C²·Dk,
///   scores·V 2·C²·Dv, inter-chunk Q·S 2·C·Dk·Dv, state write Kᵀ·V 2·C·Dk·Dv.
///   Total 2·C²·(Dk + Dv) + 4·C·Dk·Dv. (The per-channel gate's sub-chunked scores cost more elementwise work; the
///   model still counts the 2·C²·Dk a score matrix needs.)</item>
/// <item>delta / gated delta (WY/UT form): K·Kᵀ 2·C²·Dk, the two unit-triangular solves L⁻¹(βK) C²·Dk and
///   L⁻¹(βV) C²·Dv (C²/2 multiply-adds per right-hand-side column), W·S 2·C·Dk·Dv, Q·Kᵀ 2·C²·Dk, Q·S 2·C·Dk·Dv,
///   scores·V_new 2·C²·Dv, state write Kᵀ·V_new 2·C·Dk·Dv.
///   Total 5·C²·Dk + 3·C²·Dv + 6·C·Dk·Dv.</item>
/// </list>
/// <para><b>Step forms and the naive reference</b> (token by token): the recurrence's own work per token —
/// gated linear: kᵀv 2·Dk·Dv + q·S 2·Dk·Dv = 4·Dk·Dv; delta: k·S 2·Dk·Dv + kᵀv′ 2·Dk·Dv + q·S 2·Dk·Dv = 6·Dk·Dv.
/// (The naive reference does more — it builds I − βkᵀk explicitly — but is credited with the same useful work.)</para>
/// <para><b>Causal attention (SDPA)</b>: Q·Kᵀ and P·V over the causal half, 2·T²·D·½ each = 2·T²·D per head
/// (softmax not counted).</para>
/// <para><b>Backward</b> ≈ 2× forward for every kernel, so forward+backward = 3× the forward count. (This is a
/// convention: flash-attention's backward is nearer 2.5×; the chunk forms' autograd backward does roughly two
/// matmuls per forward matmul.)</para>
/// </summary>
public static class KernelFlops
{
    /// <summary>Forward+backward FLOPs = this × forward FLOPs.</summary>
    public const double ForwardBackwardFactor = 3;

    public const string Description =
        "matmul FLOPs only (multiply-add = 2), per batch row and head. Chunk (size C, N = ceil(T/C) chunks): " +
        "gated linear 2C²(Dk+Dv) + 4C·Dk·Dv per chunk (QKᵀ, P·V, Q·S, Kᵀ·V); delta 5C²·Dk + 3C²·Dv + 6C·Dk·Dv per chunk " +
        "(K·Kᵀ, QKᵀ, two triangular solves C²·Dk and C²·Dv, W·S, Q·S, P·V_new, Kᵀ·V_new). Step/naive: 4·Dk·Dv (gated linear) " +
        "or 6·Dk·Dv (delta) per token. Causal SDPA: 2·T²·D per head. Forward+backward = 3 × forward.";

    /// <summary>Forward FLOPs of a chunk form for the whole batch.</summary>
    public static double ChunkForward(MatrixKernelKind kind, long batch, long heads, long t, long dk, long dv, long chunk)
    {
        double c = chunk, n = (t + chunk - 1) / chunk;
        double perChunk = kind switch
        {
            MatrixKernelKind.GatedLinear => 2 * c * c * (dk + dv) + 4 * c * dk * dv,
            MatrixKernelKind.Delta => 5 * c * c * dk + 3 * c * c * dv + 6 * c * dk * dv,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return batch * heads * n * perChunk;
    }

    /// <summary>Forward FLOPs of the token-by-token recurrence (step loop, naive reference) for the whole batch.</summary>
    public static double RecurrentForward(MatrixKernelKind kind, long batch, long heads, long t, long dk, long dv) =>
        batch * heads * (double)t * (kind == MatrixKernelKind.Delta ? 6.0 : 4.0) * dk * dv;

    /// <summary>Forward FLOPs of causal softmax attention for the whole batch.</summary>
    public static double AttentionForward(long batch, long heads, long t, long d) => batch * heads * 2.0 * t * t * d;
}
