using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// The retention gate (Miras): how the memory forgets. Every retention decays the stored state by the per-token
/// factor (1 − α_t); some also map that raw state to the weights the memory computes with (a projection the
/// paper's closed-form step applies after each update). Gradients are taken w.r.t. those effective weights and
/// applied to the raw state. raw [..., in, out] (one layer).
/// </summary>
public abstract record Retention
{
    /// <summary>Effective weights from the raw state; the identity for plain decay.</summary>
    public abstract Tensor Effective(Tensor raw);

    /// <summary>True when <see cref="Effective"/> is the identity, so the chunk form may read through the dual form.</summary>
    public virtual bool IsIdentity => false;
}

/// <summary>ℓ2 retention: W_t = (1 − α_t) W_{t−1} + update (Titans' forgetting gate, Gated DeltaNet's decay).</summary>
public sealed record DecayRetention : Retention
{
    public override Tensor Effective(Tensor raw) => raw;
    public override bool IsIdentity => true;
}

/// <summary>
/// ℓ_q retention (Moneta): the raw state A accumulates decayed gradient steps and the memory computes with
/// W = A / ‖A‖_q^{q−2}, the ℓ_q norm over each layer's whole matrix (see Moneta.cs for the reading of the paper).
/// </summary>
public sealed record LqRetention(double Q, double Epsilon = 1e-6) : Retention
{
    public override Tensor Effective(Tensor raw)
    {
        var norm = raw.abs().pow(Q).sum([-2, -1], keepdim: true).add(Epsilon).pow(1 / Q);
        return raw / norm.pow(Q - 2);
    }
}

/// <summary>
/// KL retention (Memora): the raw state is a matrix of logits and the memory computes with W = c · softmax(logits)
/// over each row's outputs, so every row of every layer lies on a simplex scaled by c. Decaying the logits by
/// (1 − α) and adding −θ∇ is the KL-proximal (mirror-descent) step W_t = c·softmax((1 − α) log W_{t−1} − θ∇).
/// </summary>
public sealed record SoftmaxRetention(double Scale) : Retention
{
    public override Tensor Effective(Tensor raw) => Scale * raw.softmax(-1);
}
