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
///   Total 5·C²·Dk + 3·C²·Dv + 6·C·Dk·Dv. The generalized rule with a = k (GDN-2, Comba) counts the same; with its own
///   transition vector a (RWKV-7's form) it adds E ⋆ K and Q ⋆ A 2·C²·Dk each, their products with V 2·C²·Dv each and
///   the write Kᵀ·V 2·C·Dk·Dv.</item>
/// </list>
/// <para><b>Step forms and the naive reference</b> (token by token): the recurrence's own work per token —
/// gated linear: kᵀv 2·Dk·Dv + q·S 2·Dk·Dv = 4·Dk·Dv; delta: k·S 2·Dk·Dv + kᵀv′ 2·Dk·Dv + q·S 2·Dk·Dv = 6·Dk·Dv.
/// (The naive reference does more — it builds I − βkᵀk explicitly — but is credited with the same useful work.)</para>
/// <para><b>Deep memories</b> (<see cref="DeepChunkForward"/>, <see cref="DeepRecurrentForward"/>): per batch row and
/// head, for a memory MLP with layers (in_l, out_l), P_l = in_l·out_l and Omega window c. The chunk form works in blocks
/// of b ≤ C tokens (<see cref="DeepKernel.BlockSize"/>; C/b blocks per chunk), each with E = b + c − 1 writers and R
/// base matrices (the block-start weights, + momentum when both are read). Per block: the writers' gradients at the
/// chunk-start weights (MLP forward 2E·P_l per layer, error back-propagation 2E·P_l per layer after the first); the
/// coefficient matrices (GD: 2b²E; momentum or Muon: 4b²E + 2b²); the block-end weights 2E·P_l (+ 2E·P_l momentum).
/// Then the read: the dual form (titans, yaad, omeganet), per layer a·W 2b·P_l, a·S 2b·P_l (momentum), a·Kᵀ 2b·E·in_l,
/// scores·δ 2b·E·out_l; ℓ_q retention (moneta) the same dual read plus every token's weights 2b·(R + E)·P_l for its
/// power sums; the softmax retention (memora) every token's weights 2b·(R + E)·P_l and the per-token read 2b·P_l;
/// Muon (atlas) every token's momentum 2b·(1 + E)·P_l, k Newton–Schulz steps per token of k·(4m²n + 2m³)
/// (m = min(in, out), n = max), the decayed sum of the orthogonalised steps 2b²·P_l and the per-token read 2b·P_l.
/// Work done twice to save memory (the per-token weights rebuilt in the backward, ATLAS's blocks recomputed) is not
/// counted again. Step loop and naive reference, per token and layer: the window's gradients 2c·P_l (+ 2c·P_l
/// back-propagation after the first layer), their sum 2c·P_l, the read 2·P_l, and Muon's Newton–Schulz steps.
/// Retention maps (ℓ_q, softmax), activations and LayerNorm are elementwise and not counted.</para>
/// <para><b>Causal attention (SDPA)</b>: Q·Kᵀ and P·V over the causal half, 2·T²·D·½ each = 2·T²·D per head
/// (softmax not counted).</para>
/// <para><b>Backward</b> ≈ 2× forward for every kernel, so forward+backward = 3× the forward count. (This is a
/// convention: flash-attention's backward is nearer 2.5×; the chunk forms' autograd backward does roughly two
/// matmuls per forward matmul.)</para>
/// </summary>
static class KernelFlops
{
    /// <summary>Forward+backward FLOPs = this × forward FLOPs.</summary>
    public const double ForwardBackwardFactor = 3;

    public const string Description =
        "matmul FLOPs only (multiply-add = 2), per batch row and head. Chunk (size C, N = ceil(T/C) chunks): gated linear 2C²(Dk+Dv) + " +
        "4C·Dk·Dv per chunk (QKᵀ, P·V, Q·S, Kᵀ·V); delta 5C²·Dk + 3C²·Dv + 6C·Dk·Dv per chunk (K·Kᵀ, QKᵀ, two " +
        "triangular solves C²·Dk and C²·Dv, W·S, Q·S, P·V_new, Kᵀ·V_new). Step/naive: 4·Dk·Dv (gated linear) or 6·Dk·Dv " +
        "(delta) per token. Causal SDPA: 2·T²·D per head. Deep memories (P_l = in·out per MLP layer, window c; chunk form in blocks " +
        "of b ≤ C tokens, E = b+c−1 writers, R base matrices): per block gradients 2E·P_l (+2E·P_l back-prop after layer 0), " +
        "coefficients 2b²E (GD) or 4b²E+2b² (momentum, Muon), end state 2E·P_l (+2E·P_l momentum); dual form read (titans, yaad, " +
        "omeganet; moneta too) 2b·P_l (+2b·P_l momentum) + 2b·E·(in+out); per-token weights 2b·(R+E)·P_l (moneta's power sums, " +
        "memora) + memora's read 2b·P_l; atlas: momenta 2b(1+E)·P_l + per token k·(4m²n+2m³) Newton–Schulz + 2b²·P_l + read " +
        "2b·P_l; step/naive per token 2c·P_l (+2c·P_l back-prop) + 2c·P_l + 2·P_l (+ Newton–Schulz). " +
        "Forward+backward = 3 × forward.";

    /// <summary>Forward FLOPs of a chunk form for the whole batch.</summary>
    public static double ChunkForward(MatrixKernelKind kind, long batch, long heads, long t, long dk, long dv, long chunk,
        bool ownTransition = false)
    {
        double c = chunk, n = (t + chunk - 1) / chunk;
        double perChunk = kind switch
        {
            MatrixKernelKind.GatedLinear => 2 * c * c * (dk + dv) + 4 * c * dk * dv,
            MatrixKernelKind.Delta => 5 * c * c * dk + 3 * c * c * dv + 6 * c * dk * dv,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        // a ≠ k: E ⋆ K and Q ⋆ A (2·C²·Dk each), their products with V (2·C²·Dv each), and the write Kᵀ V (2·C·Dk·Dv)
        if (ownTransition) perChunk += 4 * c * c * dk + 4 * c * c * dv + 2 * c * dk * dv;
        return batch * heads * n * perChunk;
    }

    /// <summary>Forward FLOPs of the token-by-token recurrence (step loop, naive reference) for the whole batch; a delta
    /// rule with its own transition vector writes k vᵀ and a rᵀ apart (2·Dk·Dv more per token).</summary>
    public static double RecurrentForward(MatrixKernelKind kind, long batch, long heads, long t, long dk, long dv,
        bool ownTransition = false) =>
        batch * heads * (double)t * (kind == MatrixKernelKind.Delta ? ownTransition ? 8.0 : 6.0 : 4.0) * dk * dv;

    /// <summary>Forward FLOPs of a deep memory's chunk form for the whole batch (see the class summary).</summary>
    public static double DeepChunkForward(DeepMemoryRule rule, MemoryMlp mlp, long batch, long heads, long t, long chunk)
    {
        double b = DeepKernel.BlockSize(rule, mlp, batch * heads, (int)chunk), e = b + rule.Window - 1;
        double chunks = (t + chunk - 1) / chunk, blocks = chunks * chunk / b;
        bool momentum = rule.Learner.HasMomentum, bases2 = momentum && rule.Learner is not Muon;
        double perBlock = momentum ? 4 * b * b * e + 2 * b * b : 2 * b * b * e;
        foreach (var (l, din, dout) in Layers(mlp))
        {
            double p = din * dout, perToken = 2 * b * ((bases2 ? 2 : 1) + e) * p;
            perBlock += 2 * e * p * (l > 0 ? 2 : 1);
            if (rule.Learner is Muon muon)
            {
                perBlock += 2 * b * (1 + e) * p + b * NewtonSchulz(muon, din, dout) + 2 * b * b * p + 2 * b * p;
                continue;
            }
            perBlock += 2 * e * p * (momentum ? 2 : 1);                                             // end state
            perBlock += rule.Retention switch
            {
                SoftmaxRetention => perToken + 2 * b * p,
                LqRetention => perToken + Dual(),
                _ => Dual(),
            };
            double Dual() => 2 * b * p * (momentum ? 2 : 1) + 2 * b * e * (din + dout);
        }
        return batch * heads * blocks * perBlock;
    }

    /// <summary>Forward FLOPs of a deep memory's token-by-token form (step loop, naive reference) for the whole batch.</summary>
    public static double DeepRecurrentForward(DeepMemoryRule rule, MemoryMlp mlp, long batch, long heads, long t)
    {
        double window = rule.Window, perToken = 0;
        foreach (var (l, din, dout) in Layers(mlp))
        {
            double p = din * dout;
            perToken += 2 * window * p * (l > 0 ? 2 : 1) + 2 * window * p + 2 * p
                + (rule.Learner is Muon muon ? NewtonSchulz(muon, din, dout) : 0);
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

    static IEnumerable<(int L, double In, double Out)> Layers(MemoryMlp mlp) =>
        mlp.Layers.Select((s, l) => (l, (double)s.In, (double)s.Out));

    /// <summary>Forward FLOPs of causal softmax attention for the whole batch.</summary>
    public static double AttentionForward(long batch, long heads, long t, long d) => batch * heads * 2.0 * t * t * d;
}
