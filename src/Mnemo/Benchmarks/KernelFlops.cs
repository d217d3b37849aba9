using Mnemo.Memory.Deep;
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
/// <para><b>Deep memories</b> (<see cref="DeepChunkForward"/>, <see cref="DeepRecurrentForward"/>): per batch row and
/// head, for a memory MLP with layers (in_l, out_l), P_l = in_l·out_l, Omega window c, chunk C and E = C + c − 1
/// writers per chunk. Per chunk: the writers' gradients at the chunk-start weights (MLP forward 2E·P_l per layer,
/// error back-propagation 2E·P_l per layer after the first); the coefficient matrices (GD: 2C²E; momentum or Muon:
/// 4C²E + 2C²). Then either the dual form (titans, yaad, omeganet), per layer: a·W 2C·P_l, a·S 2C·P_l (momentum),
/// a·Kᵀ 2C·E·in_l, scores·δ 2C·E·out_l, end state 2E·P_l (+ 2E·P_l for the momentum); or the materialised form
/// (moneta, memora, atlas), per layer: every token's weights 2C·E·P_l (the per-token materialisation), the per-token
/// read 2C·P_l and — Muon — k Newton–Schulz steps per token of k·(4m²n + 2m³) (m = min(in, out), n = max) plus the
/// decayed sum of the orthogonalised steps 2C²·P_l. Step loop and naive reference, per token and layer: the window's
/// gradients 2c·P_l (+ 2c·P_l back-propagation after the first layer), their sum 2c·P_l, the read 2·P_l, and Muon's
/// Newton–Schulz steps. Retention maps (ℓ_q, softmax), activations and LayerNorm are elementwise and not counted.</para>
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
        "or 6·Dk·Dv (delta) per token. Causal SDPA: 2·T²·D per head. Deep memories (P_l = in·out per MLP layer, window c, " +
        "E = C+c−1): per chunk gradients 2E·P_l (+2E·P_l back-prop after layer 0), coefficients 2C²E (GD) or 4C²E+2C² (momentum, Muon); " +
        "dual form 2C·P_l (+2C·P_l momentum) + 2C·E·(in+out) + 2E·P_l (+2E·P_l momentum); materialised form (moneta, memora, atlas) " +
        "per-token weights 2C·E·P_l + read 2C·P_l, Muon + per token k·(4m²n+2m³) Newton–Schulz + 2C²·P_l; step/naive per token " +
        "2c·P_l (+2c·P_l back-prop) + 2c·P_l + 2·P_l (+ Newton–Schulz). Forward+backward = 3 × forward.";

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

    /// <summary>Forward FLOPs of a deep memory's chunk form for the whole batch (see the class summary).</summary>
    public static double DeepChunkForward(DeepMemoryRule rule, MemoryMlp mlp, long batch, long heads, long t, long chunk)
    {
        double c = chunk, n = (t + chunk - 1) / chunk, e = chunk + rule.Window - 1;
        bool momentum = rule.Learner.HasMomentum, dual = rule.Retention.IsIdentity && rule.Learner is not Muon;
        double perChunk = momentum ? 4 * c * c * e + 2 * c * c : 2 * c * c * e;
        foreach (var (l, din, dout) in Layers(mlp))
        {
            double p = din * dout;
            perChunk += 2 * e * p * (l > 0 ? 2 : 1);
            if (dual)
                perChunk += 2 * c * p * (momentum ? 2 : 1) + 2 * c * e * (din + dout) + 2 * e * p * (momentum ? 2 : 1);
            else
                perChunk += 2 * c * e * p + 2 * c * p + (rule.Learner is Muon muon ? c * NewtonSchulz(muon, din, dout) + 2 * c * c * p : 0);
        }
        return batch * heads * n * perChunk;
    }

    /// <summary>Forward FLOPs of a deep memory's token-by-token form (step loop, naive reference) for the whole batch.</summary>
    public static double DeepRecurrentForward(DeepMemoryRule rule, MemoryMlp mlp, long batch, long heads, long t)
    {
        double window = rule.Window, perToken = 0;
        foreach (var (l, din, dout) in Layers(mlp))
        {
            double p = din * dout;
            perToken += 2 * window * p * (l > 0 ? 2 : 1) + 2 * window * p + 2 * p + (rule.Learner is Muon muon ? NewtonSchulz(muon, din, dout) : 0);
        }
        return batch * heads * (double)t * perToken;
    }

    /// <summary>k quintic Newton–Schulz steps on an in×out matrix, on its wide orientation m ≤ n: per step X·Xᵀ
    /// 2m²n, (X·Xᵀ)² 2m³, (…)·X 2m²n.</summary>
    static double NewtonSchulz(Muon muon, double din, double dout)
    {
        double m = Math.Min(din, dout), n = Math.Max(din, dout);
        return muon.Steps * (4 * m * m * n + 2 * m * m * m);
    }

    static IEnumerable<(int L, double In, double Out)> Layers(MemoryMlp mlp) => mlp.Layers.Select((s, l) => (l, (double)s.In, (double)s.Out));

    /// <summary>Forward FLOPs of causal softmax attention for the whole batch.</summary>
    public static double AttentionForward(long batch, long heads, long t, long d) => batch * heads * 2.0 * t * t * d;
}
