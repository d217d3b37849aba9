using Mnemo.Memory.Matrix;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Comba (Hu et al. 2025, arXiv 2506.02475; docs/mechanisms.md#comba): the delta rule with a scalar-plus-low-rank
/// transition, whose erase reads the state before the decay, and a corrected query:
/// <code>S_t = (α_t I − β_t k̂_t p̂_tᵀ) S_{t−1} + β_t k̂_t v_tᵀ,  o_t = S_tᵀ q̂_t,  q̂_t = L2(q_t − D σ(d) k_t)</code>
/// with α_t = exp(g_t), g_t = −exp(A_log) · softplus(a_proj x_t + dt_bias) per head (Gated DeltaNet's), β_t = σ(b_proj x_t)
/// and p = k σ(d) L2-normalised, which is k̂ (fla normalises p inside its kernel, so the per-head scalar σ(d) acts
/// only through the correction). The read is RMS-normalised and gated by σ(g_proj x). Names follow fla's Comba.
/// </summary>
public sealed class Comba : MatrixMemoryMixer
{
    readonly Projection a_proj, b_proj;
    readonly Parameter A_log, dt_bias, decay, D;
    new readonly Projection g_proj;                  // not the mixers' silu gate: Comba's sigmoid gate, as fla names it

    public Comba(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(Comba), c with { OutputGate = false }, matrix, outputGate: false)
    {
        a_proj = new Projection(c.DModel, c.NumHeads, hasBias: false);
        b_proj = new Projection(c.DModel, c.NumHeads, hasBias: false);
        (A_log, dt_bias) = MambaGate.Initial(c.NumHeads, matrix.DtMin, matrix.DtMax);
        decay = nn.Parameter(ones(c.NumHeads));                                                // d: σ(1) ≈ 0.73
        D = nn.Parameter(full(c.NumHeads, matrix.CombaCorrection));                           // the output correction
        g_proj = new Projection(c.DModel, c.NumHeads * c.ValueHeadDim, hasBias: false);
        RegisterComponents();
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.Delta;

    /// <summary>q̂ = L2(q − D σ(d) k)·Dk^{−1/2} and k̂ = L2(k), from the convolved q, k [B, T, H, Dk].</summary>
    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) =>
        UnitNormFeatures(q - (D * decay.sigmoid()).view(Heads, 1) * k, k);

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) =>
        (MambaGate.LogDecay(a_proj.forward(x), A_log, dt_bias), Beta(b_proj.forward(x)));

    /// <summary>The erase vector β p̂ = β k̂ read before the decay, and the written value β v.</summary>
    protected override KernelInputs Rule(KernelInputs inputs, Tensor x)
    {
        var beta = inputs.Beta!.unsqueeze(-1);                                               // [B, T, H, 1]
        return inputs with { Beta = null, Erase = beta * inputs.K, V = beta * inputs.V, ReadBeforeDecay = true };
    }

    protected override Tensor GateOutput(Tensor y, Tensor x) =>
        y * g_proj.forward(x).sigmoid().view(x.shape[0], x.shape[1], Heads, ValueDim);      // RMSNorm(o) ⊙ σ(g_proj x)
}
