using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// The memory's learning algorithm: how the (windowed) gradient g_t becomes an update of the raw state. Gates per
/// token and head: θ_t learning rate, η_t momentum, α_t forgetting (see <see cref="Retention"/>).
/// </summary>
public abstract record Learner
{
    /// <summary>Whether the learner carries a momentum state S.</summary>
    public virtual bool HasMomentum => true;
}

/// <summary>One gradient step per token: W_t = (1 − α_t) W_{t−1} − θ_t g_t (DeltaNet, Gated DeltaNet, Moneta, Yaad,
/// Memora).</summary>
public sealed record GradientDescent : Learner
{
    public override bool HasMomentum => false;
}

/// <summary>Titans' momentum ("past surprise"): S_t = η_t S_{t−1} − θ_t g_t, W_t = (1 − α_t) W_{t−1} + S_t.</summary>
public sealed record MomentumDescent : Learner;

/// <summary>
/// Muon (ATLAS): momentum of raw gradients, orthogonalised: S_t = η_t S_{t−1} + g_t,
/// W_t = (1 − α_t) W_{t−1} − θ_t NS_k(S_t), with k Newton–Schulz-5 iterations per layer.
/// </summary>
public sealed record Muon(int Steps = 5) : Learner
{
    // Keller Jordan's quintic coefficients (lucidrains' newtonschulz5, ATLAS).
    const double A = 3.4445, B = -4.7750, C = 2.0315;

    /// <summary>NS_k(S) for S [..., m, n]: X = S/‖S‖_F, then X ← aX + (bXXᵀ + c(XXᵀ)²)X, on the wide orientation.</summary>
    public Tensor Orthogonalise(Tensor s)
    {
        bool tall = s.shape[^2] > s.shape[^1];
        var x = tall ? s.transpose(-1, -2) : s;
        // √(‖X‖² + ε²) rather than ‖X‖ + ε: the same scaling, but differentiable at S = 0 (a layer whose gradients
        // are all zero, e.g. behind a zero-initialised output layer), where ‖·‖'s gradient is 0/0.
        x = x / (x.square().sum([-2, -1], keepdim: true) + 1e-14).sqrt();
        for (int i = 0; i < Steps; i++)
        {
            var gram = x.matmul(x.transpose(-1, -2));                        // X Xᵀ   [..., m, m]
            x = A * x + (B * gram + C * gram.matmul(gram)).matmul(x);
        }
        return tall ? x.transpose(-1, -2) : x;
    }
}
