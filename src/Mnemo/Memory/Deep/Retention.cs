using TorchSharp;
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

    /// <summary>The standard deviation of a hidden layer's initial raw weights, fan-in <paramref name="fanIn"/>.</summary>
    public virtual double InitialStd(long fanIn) => Math.Pow(fanIn, -0.5);

    /// <summary>Whether a layer may start at zero raw weights (the output layer does, so a fresh memory reads 0).</summary>
    public virtual bool MayStartAtZero => true;

    /// <summary>A layer's initial raw weights [H, in, out] from its N(0, s²) draw; the draw itself by default.</summary>
    public virtual Tensor Start(Tensor draw) => draw;

    /// <summary>True when <see cref="Effective"/> is the identity, so the chunk form may read through the dual form.</summary>
    public virtual bool IsIdentity => false;

    /// <summary>The chunk form's read through every token's raw weights: y_t = x_t · Effective(M_t), for raw [B, H, n, in, out]
    /// and read inputs x [B, H, n, in] → [B, H, n, out].</summary>
    public virtual Tensor ReadPerToken(Tensor raw, Tensor x) => x.unsqueeze(-2).matmul(Effective(raw)).squeeze(-2);

    /// <summary>The vector-Jacobian product of <see cref="ReadPerToken"/> for the output gradient dy [B, H, n, out]:
    /// (∂/∂raw [B, H, n, in, out], ∂/∂x [B, H, n, in]). By autograd here; the retentions override it in closed form.</summary>
    public virtual (Tensor Raw, Tensor X) ReadPerTokenBackward(Tensor raw, Tensor x, Tensor dy)
    {
        using var grad = enable_grad();
        var (r, a) = (raw.detach().requires_grad_(true), x.detach().requires_grad_(true));
        var g = torch.autograd.grad([ReadPerToken(r, a)], [r, a], [dy]);
        return (g[0], g[1]);
    }

    /// <summary>x [B, H, n, in] → [B, H, n, in, 1] ⊗ dy [B, H, n, out]: every token's rank-1 xᵀ dy.</summary>
    protected static Tensor Outer(Tensor x, Tensor dy) => x.unsqueeze(-1) * dy.unsqueeze(-2);
}

/// <summary>ℓ2 retention: W_t = (1 − α_t) W_{t−1} + update (Titans' forgetting gate, Gated DeltaNet's decay).</summary>
public sealed record DecayRetention : Retention
{
    public override Tensor Effective(Tensor raw) => raw;
    public override bool IsIdentity => true;
    public override (Tensor Raw, Tensor X) ReadPerTokenBackward(Tensor raw, Tensor x, Tensor dy) =>
        (Outer(x, dy), raw.matmul(dy.unsqueeze(-1)).squeeze(-1));
}

/// <summary>
/// ℓ_q retention (Moneta): the raw state A accumulates decayed gradient steps and the memory computes with
/// W = A / ‖A‖_q^{q−2}, the ℓ_q norm over each layer's whole matrix (see Moneta.cs for the reading of the paper).
/// </summary>
public sealed record LqRetention(double Q, double Epsilon = 1e-6) : Retention
{
    /// <summary>
    /// W = A/‖A‖_q^{q−2} is homogeneous of degree −1 for q = 4 (‖W‖₄ = 1/‖A‖₄), so a raw state near zero computes with
    /// huge weights: an output layer started at zero reads, after the first chunk's small writes, ~1/‖A‖ too large,
    /// and the next chunk's gradients (taken w.r.t. W, applied to A) are then larger than all of A and overwrite it.
    /// Every layer therefore starts on the unit ℓ_q sphere, ‖A‖_q = 1, where W = A (the map's fixed points), and
    /// the output layer starts random there instead of at zero (docs/deep-memories.md, 2g).
    /// </summary>
    public override bool MayStartAtZero => false;

    /// <summary>The draw scaled to ‖A‖_q = 1 per head.</summary>
    public override Tensor Start(Tensor draw) => draw / PowerSum(draw).pow(1 / Q).unsqueeze(-1).unsqueeze(-1);

    public override Tensor Effective(Tensor raw)
    {
        var norm = raw.abs().pow(Q).sum([-2, -1], keepdim: true).add(Epsilon).pow(1 / Q);
        return raw / norm.pow(Q - 2);
    }

    /// <summary>y_t = (x_t · A_t) / d_t with d_t = ‖A_t‖_q^{q−2} = (s_t + ε)^{(q−2)/q}, s_t = Σ|A_t|^q.</summary>
    public override Tensor ReadPerToken(Tensor raw, Tensor x) =>
        x.unsqueeze(-2).matmul(raw).squeeze(-2) / Divisor(PowerSum(raw)).unsqueeze(-1);

    /// <summary>s = Σ|A|^q over each matrix of raw [..., in, out] → [...]; for q = 4 by squaring twice (pow(4) is several
    /// times slower). With <paramref name="overwrite"/> raw's storage is reused for the powers (no autograd).</summary>
    public Tensor PowerSum(Tensor raw, bool overwrite = false)
    {
        var powers = (overwrite, Q == 4) switch
        {
            (true, true) => raw.pow_(2).pow_(2),
            (true, false) => raw.abs_().pow_(Q),
            (false, true) => raw.square().square(),
            (false, false) => raw.abs().pow(Q),
        };
        return powers.sum([-2, -1]);
    }

    /// <summary>
    /// ∂/∂A of Σ ds · PowerSum(A) for ds [...]: q A|A|^{q−2} ds (4 A³ ds for q = 4), overwriting raw (no autograd).
    /// </summary>
    public Tensor PowerSumGradient(Tensor raw, Tensor ds)
    {
        var scale = (Q * ds).unsqueeze(-1).unsqueeze(-1);
        return (Q == 4 ? raw.pow_(3) : raw.mul_(raw.abs().pow_(Q - 2))).mul_(scale);
    }

    /// <summary>d = ‖A‖_q^{q−2} from the power sum s: (s + ε)^{(q−2)/q}, the divisor W = A / d.</summary>
    public Tensor Divisor(Tensor powerSum) => (powerSum + Epsilon).pow((Q - 2) / Q);
}

/// <summary>
/// KL retention (Memora): the raw state is a matrix of logits and the memory computes with W = c · softmax(logits)
/// over each row's outputs, so every row of every layer lies on a simplex scaled by c. Decaying the logits by
/// (1 − α) and adding −θ∇ is the KL-proximal (mirror-descent) step W_t = c·softmax((1 − α) log W_{t−1} − θ∇).
/// </summary>
public sealed record SoftmaxRetention(double Scale) : Retention
{
    public override Tensor Effective(Tensor raw) => Scale * raw.softmax(-1);

    /// <summary>
    /// Hidden layers start with rows near one-hot (logits N(0, 5²)): a row of small logits is nearly uniform, so the
    /// layer maps every key to almost the same hidden vector (only Σ_i k_i survives) and its exponentiated-gradient
    /// step moves a uniform row by about 1/out of the step. Measured with `mnemo probe --variants memora` (8 pairs,
    /// 2 layers, D = 32, chunk 16, θ = 0.5): 24% of the pairs recalled with logits N(0, 1/in), 93% with std 5, no
    /// gain beyond (docs/deep-memories.md, 2e). The output layer still starts at zero logits (uniform rows).
    /// </summary>
    public override double InitialStd(long fanIn) => InitialLogitStd;

    public const double InitialLogitStd = 5;

    /// <summary>c x_t softmax(L_t), scaling the read rather than the matrices.</summary>
    public override Tensor ReadPerToken(Tensor raw, Tensor x) => Scale * x.unsqueeze(-2).matmul(raw.softmax(-1)).squeeze(-2);

    /// <summary>With P_t = softmax(L_t) and y_t = c x_t P_t: ∂/∂x_t = c P_t dy_t and
    /// ∂/∂L_t[i, j] = c x_t,i P_t,ij (dy_t,j − (P_t dy_t)_i) (softmax's Jacobian per row).</summary>
    public override (Tensor Raw, Tensor X) ReadPerTokenBackward(Tensor raw, Tensor x, Tensor dy)
    {
        var p = raw.softmax(-1);
        var pdy = p.matmul(dy.unsqueeze(-1)).squeeze(-1);                     // P_t dy_t   [B, H, n, in]
        var grad = (dy.unsqueeze(-2) - pdy.unsqueeze(-1)).mul_(p).mul_((Scale * x).unsqueeze(-1));
        return (grad, Scale * pdy);
    }
}
