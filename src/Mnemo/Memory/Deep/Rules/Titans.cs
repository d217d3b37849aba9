using Mnemo.Memory.Deep;

namespace Mnemo.Memory.Deep.Rules;

/// <summary>
/// Titans' long-term memory, LMM (Behrouz, Zhong, Mirrokni 2024, §3): ℓ2 loss ‖M(k) − v‖², momentum ("past
/// surprise") and a forgetting gate: S_t = η_t S_{t−1} − θ_t ∇ℓ, M_t = (1 − α_t) M_{t−1} + S_t, with a 2-layer
/// MLP memory by default.
/// Decisions (checked against the paper and lucidrains/titans-pytorch, which differ):
/// • Reads use each token's updated weights y_t = M*_t(q_t) (the paper's Eq. 15); lucidrains reads the weights of
///   the last finished chunk. Gradients within a chunk are taken at the chunk-start weights in both.
/// • The loss is ‖·‖² summed over channels (gradient 2e), as the paper writes it; lucidrains takes the mean.
/// • The residual memory wrapper x + LN(mlp(x)) uses a parameter-free LayerNorm; lucidrains' learnable γ (itself
///   trained at test time) is left out so every memory parameter is an MLP weight.
/// </summary>
public static class Titans
{
    public static DeepMemoryRule Rule { get; } = new("titans", new L2Objective(), new DecayRetention(), new MomentumDescent());
}
