using Mnemo.Memory.Deep;

namespace Mnemo.Memory.Deep.Rules;

/// <summary>
/// Moneta (Miras, Behrouz et al. 2025, §5): ℓ_p attentional bias (p = 3) with ℓ_q retention (q = 4):
/// A_t = (1 − α_t) A_{t−1} − θ_t ∇ℓ_p(W_{t'}), W_t = A_t / ‖A_t‖_q^{q−2}; as computed, with ε = 1e−6 in both:
/// ℓ_p(y, v) = Σ_j ((y_j − v_j)² + ε)^{3/2} and W = A / (Σ_ij |A_ij|⁴ + ε)^{1/2} (‖A‖₄² with ε inside the sum).
/// Decisions (the paper's details were checked only through secondary summaries, which agree on the exponent q − 2):
/// • ‖·‖_q is the entrywise norm over each layer's whole matrix (no source says per row).
/// • sign and |·| use the smooth surrogate of the loss Σ(e² + ε)^{p/2}, so the closed-form gradient
///   p e (e² + ε)^{p/2 − 1} is exact (the paper smooths sign by tanh and |·| by √(e² + ε) separately); ε also keeps
///   the normalisation finite for an all-zero A.
/// • Every layer of A starts on the unit ℓ4 sphere (<see cref="LqRetention.Start"/>), the output layer too: the map is
///   homogeneous of degree −1, and a zero start left Moneta at chance on MQAR (docs/deep-memories.md, 2g).
/// • The paper normalises only at chunk ends during parallel training; here every token reads with its own
///   normalised weights (the per-token weights are materialised), so the chunk form equals the recurrence with
///   chunk-start gradients exactly.
/// </summary>
public static class Moneta
{
    public static DeepMemoryRule Rule { get; } = new("moneta", new LpObjective(3), new LqRetention(4), new GradientDescent());
}
