using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// The attentional bias (Miras): the inner loss ℓ(M(k), v) the memory descends on each token. Each objective gives
/// the per-token loss (what the naive reference differentiates with autograd) and its gradient w.r.t. the memory's
/// output in closed form (what the kernels use); tests check that the two agree. y, v [B, H, N, Dv];
/// <c>delta</c> is the per-token threshold [B, H, N] of objectives that take one (Huber), else null.
/// </summary>
public abstract record Objective
{
    /// <summary>ℓ per token [B, H, N].</summary>
    public abstract Tensor Loss(Tensor y, Tensor v, Tensor? delta);

    /// <summary>∂ℓ/∂y [B, H, N, Dv].</summary>
    public abstract Tensor OutputError(Tensor y, Tensor v, Tensor? delta);

    /// <summary>Whether the objective reads a per-token threshold δ_t.</summary>
    public virtual bool NeedsDelta => false;
}

/// <summary>ℓ = ‖y − v‖² (Titans, Memora, the delta rule): ∂ℓ/∂y = 2(y − v).</summary>
public sealed record L2Objective : Objective
{
    public override Tensor Loss(Tensor y, Tensor v, Tensor? delta) => (y - v).square().sum(-1);
    public override Tensor OutputError(Tensor y, Tensor v, Tensor? delta) => 2 * (y - v);
}

/// <summary>
/// ℓ_p attentional bias (Moneta): ‖y − v‖_p^p made smooth as Σ (e² + ε)^{p/2}, whose gradient
/// p e (e² + ε)^{p/2 − 1} is the paper's p·sign(e)|e|^{p−1} with |e| ≈ √(e² + ε) and sign(e) ≈ e/√(e² + ε).
/// Taking the surrogate of the loss (not of each factor) keeps the closed form an exact gradient.
/// </summary>
public sealed record LpObjective(double P, double Epsilon = 1e-6) : Objective
{
    public override Tensor Loss(Tensor y, Tensor v, Tensor? delta) => ((y - v).square() + Epsilon).pow(P / 2).sum(-1);
    public override Tensor OutputError(Tensor y, Tensor v, Tensor? delta)
    {
        var e = y - v;
        return P * e * (e.square() + Epsilon).pow(P / 2 - 1);
    }
}

/// <summary>
/// Huber attentional bias (Yaad) on the error's norm with a data-dependent threshold δ_t ≥ 0:
/// ℓ = ‖e‖² when ‖e‖ ≤ δ_t, else 2δ_t‖e‖ − δ_t² (continuous, with a continuous gradient):
/// ∂ℓ/∂y = 2e, or 2δ_t e/‖e‖ — the ℓ2 step for small errors and a step of fixed length 2δ_t along the error (the
/// ℓ1-of-the-norm step) for outliers. This is Miras' ½‖e‖² / δ‖e‖ − ½δ² scaled by 2, the scale of the ℓ2 objective
/// ‖e‖² the other rules use, so below δ_t Yaad takes exactly Titans' step.
/// </summary>
public sealed record HuberObjective : Objective
{
    public override bool NeedsDelta => true;

    public override Tensor Loss(Tensor y, Tensor v, Tensor? delta)
    {
        var d = Threshold(delta);
        var squared = (y - v).square().sum(-1);
        var small = squared <= d.square();
        return where(small, squared, 2 * d * OuterNorm(small, squared) - d.square());
    }

    public override Tensor OutputError(Tensor y, Tensor v, Tensor? delta)
    {
        var d = Threshold(delta).unsqueeze(-1);
        var e = y - v;
        var squared = e.square().sum(-1, keepdim: true);
        var small = squared <= d.square();
        return where(small, 2 * e, 2 * d * e / OuterNorm(small, squared));
    }

    /// <summary>‖e‖ where the outer branch is taken, 1 elsewhere. A where picks values but backpropagates through both
    /// branches (0 times the untaken one's derivative), so the untaken branch must stay finite with a finite
    /// derivative: at ‖e‖ = δ = 0 (an empty Omega-window slot) ‖e‖ itself would give 0/0 and √0's infinite slope.</summary>
    static Tensor OuterNorm(Tensor small, Tensor squared) => where(small, ones_like(squared), squared).sqrt();

    static Tensor Threshold(Tensor? delta) => delta ?? throw new MnemoException(
        "the Huber objective needs a per-token threshold delta [B, T, H]");
}

/// <summary>Dot-product (Hebbian) attentional bias ℓ = −⟨y, v⟩: ∂ℓ/∂y = −v, so a depth-1 memory is linear
/// attention.</summary>
public sealed record DotProductObjective : Objective
{
    public override Tensor Loss(Tensor y, Tensor v, Tensor? delta) => -(y * v).sum(-1);
    public override Tensor OutputError(Tensor y, Tensor v, Tensor? delta) => -v;
}
