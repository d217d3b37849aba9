using Mnemo.Memory.Deep;

namespace Mnemo.Memory.Deep.Rules;

/// <summary>
/// ATLAS (Behrouz et al. 2025): the Omega rule optimised by Muon:
/// S_t = η_t S_{t−1} + ∇ Σ_{window} γ_i ℓ(M_{t'}; k_i, v_i),  M_t = (1 − α_t) M_{t−1} − θ_t NS_5(S_t).
/// Decisions: Newton–Schulz is applied to the momentum S_t (Muon's order, as a third-party ATLAS implementation and
/// lucidrains' "spectral_norm_surprises" do), per layer, on the wide orientation (Sᵀ when S has more rows than
/// columns): X₀ = S / √(‖S‖²_F + 1e−14), then 5 times X ← aX + (bXXᵀ + c(XXᵀ)²)X with Keller Jordan's quintic
/// coefficients (a, b, c) = (3.4445, −4.7750, 2.0315); the ε² = 1e−14 keeps NS differentiable at S = 0.
/// Names follow Titans (θ learning rate, η momentum, α forgetting) where the paper swaps them.
/// NS is non-linear, so the chunk form materialises every token's momentum and weights.
/// </summary>
public static class Atlas
{
    public static DeepMemoryRule Rule { get; } = new("atlas", new L2Objective(), new DecayRetention(), new Muon(5), Window: 4);
}
