using Mnemo.Memory.Deep;

namespace Mnemo.Memory.Deep.Rules;

/// <summary>
/// Memora (Miras §5): ℓ2 attentional bias with KL retention, weights on a scaled simplex:
/// W_t = c · softmax((1 − α_t) log W_{t−1} − θ_t ∇ℓ2(W_{t'})).
/// Decisions (secondary sources only; they leave the axis and c open):
/// • The state is the logits L (W = c·softmax(L)); the step is linear in L, so decay and gradients are the usual
///   recurrence on L and each token reads with c·softmax of its own logits (materialised per token) — exact,
///   where the paper applies the non-linear step only at each chunk's first token.
/// • softmax runs over each row's outputs (every input unit distributes a mass c over the layer's outputs);
///   c = 1 as in the one source that names it.
/// </summary>
public static class Memora
{
    public static DeepMemoryRule Rule { get; } = new("memora", new L2Objective(), new SoftmaxRetention(1), new GradientDescent());
}
