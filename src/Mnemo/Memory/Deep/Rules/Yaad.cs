using Mnemo.Memory.Deep;

namespace Mnemo.Memory.Deep.Rules;

/// <summary>
/// Yaad (Miras §5): Huber attentional bias with a data-dependent threshold δ_t, ℓ2 retention, gradient descent:
/// W_t = (1 − α_t) W_{t−1} − θ_t ∇ℓ_δ(W_{t'}).
/// Decisions: the switch is on the error's norm per token (as the secondary summaries read the paper), with the
/// loss ℓ = ‖e‖² for ‖e‖ ≤ δ_t and 2δ_t‖e‖ − δ_t² above — gradient 2e, or 2δ_t e/‖e‖
/// (<see cref="HuberObjective"/>). That is the paper's ½‖e‖² / δ_t‖e‖ − ½δ_t² times 2, the scale of the ℓ2 loss ‖e‖²
/// Titans uses, so below δ_t Yaad's step is Titans' step without momentum. The paper's outer branch writes δ_t∇‖e‖₁ = δ_t
/// sign(e); the norm form is its continuous counterpart (a loss whose exact gradient the kernels use). δ_t = 0 is allowed: the loss
/// is then 0 and so is the step (an empty Omega-window slot has δ = 0 and ‖e‖ = 0 and contributes nothing).
/// In the layer δ_t = softplus(w_δ·x_t + b).
/// </summary>
public static class Yaad
{
    public static DeepMemoryRule Rule { get; } = new("yaad", new HuberObjective(), new DecayRetention(), new GradientDescent());
}
