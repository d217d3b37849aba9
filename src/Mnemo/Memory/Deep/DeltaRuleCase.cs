using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// The deep memory that is the gated delta rule: a depth-1 memory (a matrix M, no residual norm) with the ℓ2
/// objective, decay retention, plain gradient descent, a window of one token and chunks of one token (so each
/// gradient is taken at M_{t−1}). Then
/// <code>M_t = (1 − α_t) M_{t−1} − 2θ_t k_tᵀ(k_t M_{t−1} − v_t) = e^{g_t}(I − β_t k_tᵀk_t) M_{t−1} + β_t k_tᵀ
/// v'_t</code>
/// with e^{g_t} = 1 − α_t, β_t = 2θ_t / (1 − α_t) and v'_t = (1 − α_t) v_t, and y_t = q_t M_t is the delta kernel's
/// output, so the layer runs the delta kernel's chunk form (one scan per 64 tokens) instead of a per-token loop.
/// β grows as α → 1; the case is taken only while every 1 − α ≥ <see cref="MinKeep"/>, where fp32 keeps it within
/// the equivalence tolerance (tested), and the deep kernel runs otherwise.
/// </summary>
public static class DeltaRuleCase
{
    public const double MinKeep = 1e-2;

    /// <summary>Whether the rule, memory and chunk size are the delta rule's (the gates are checked in <see cref="TryRun"/>).</summary>
    public static bool Applies(DeepMemoryRule rule, MemoryMlp mlp, int chunkSize) =>
        chunkSize == 1 && mlp.Depth == 1 && !mlp.ResidualNorm && rule.Window == 1 && rule.GradientClip == 0 && !rule.NormalizedStep
        && rule.Objective is L2Objective && rule.Retention.IsIdentity && rule.Learner is GradientDescent;

    /// <summary>The memory through the delta kernel, or null when it does not apply (including α too close to 1).
    /// Inputs as <see cref="DeepInputs"/>; the returned state is the deep memory's (weights = chunk-start weights).</summary>
    public static (Tensor O, DeepState State)? TryRun(DeepMemoryRule rule, MemoryMlp mlp, DeepInputs x, int chunkSize)
    {
        if (!Applies(rule, mlp, chunkSize)) return null;
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        var keep = x.Alpha is null ? null : 1 - x.Alpha.to(dtype);                                  // [B, T, H]
        if (keep is not null && keep.numel() > 0 && keep.min().to(ScalarType.Float64).item<double>() < MinKeep) return null;
        DeepKernels.Validate(rule, mlp, x);
        var theta = x.Theta.to(dtype);
        var beta = keep is null ? 2 * theta : 2 * theta / keep;
        var v = keep is null ? x.V.to(dtype) : x.V.to(dtype) * keep.unsqueeze(-1);
        var h0 = x.State?.Weights[0] ?? x.W0![0].to(dtype).expand(x.Q.shape[0], -1, -1, -1);     // [B, H, Dk, Dv]
        var inputs = new KernelInputs(x.Q.to(dtype), x.K.to(dtype), v, keep?.log(), beta, h0);
        var (o, s) = x.Q.shape[1] == 1 ? MatrixKernels.Continue(MatrixKernelKind.Delta, inputs, 64)
                                        : MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Chunk, inputs, 64);
        var state = new DeepState([s], [s], null, 0);
        return (o.to(x.Q.dtype).MoveToOuterDisposeScope(), state.MoveToOuterDisposeScope());
    }
}
