using Mnemo.Memory.Deep;

namespace Mnemo.Memory.Deep.Rules;

/// <summary>
/// Yaad (Miras §5): Huber attentional bias with a data-dependent threshold δ_t, ℓ2 retention, gradient descent:
/// W_t = (1 − α_t) W_{t−1} − θ_t ∇ℓ_δ(W_{t'}).
/// Decision: the switch is on the error's norm per token (as the secondary summaries read the paper), with the
/// loss ½‖e‖² below δ_t and δ_t‖e‖ − ½δ_t² above — gradient e, or δ_t e/‖e‖. The paper's outer branch writes
/// δ_t∇‖e‖₁ = δ_t sign(e); the norm form is its continuous counterpart (a loss whose exact gradient the kernels use).
/// In the layer δ_t = softplus(w_δ·x_t + b).
/// </summary>
public static class Yaad
{
    public static DeepMemoryRule Rule { get; } = new("yaad", new HuberObjective(), new DecayRetention(), new GradientDescent());
}
