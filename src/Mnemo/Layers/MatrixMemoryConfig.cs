using Mnemo.IO;
using Mnemo.Memory.Matrix;

namespace Mnemo.Layers;

/// <summary>
/// model.matrix: the settings of the matrix memories (linear_attention, retnet, gla, mamba2, delta_net,
/// gated_delta_net, kda, gdn2, comba; docs/mechanisms.md#the-two-matrix-kernels) and of the matrix memories a mixture of memories holds.
/// </summary>
public sealed record MatrixMemoryConfig : IValidatedConfig
{
    [Help("linear attention feature map: identity, elu_p1, relu or taylor (Based's 2nd-order expansion)")]
    public FeatureMapKind FeatureMap { get; init; } = FeatureMapKind.EluP1;
    [Help("linear attention: divide by the normaliser φ(q)·Σφ(k) (else only the output RMSNorm)")] public bool Normalize { get; init; }
    [Help("chunk size of the chunkwise-parallel memory kernels"), Range(1, 1024)] public int ChunkSize { get; init; } = 64;
    [Help("delta rules (delta_net, gated_delta_net, kda, gdn2's erase gate, comba, mom's): β = 2σ(b_proj x) ∈ (0, 2) " +
        "instead of σ(b_proj x), so the " +
        "transition I − β kᵀk can have the eigenvalue 1 − β < 0 (Grazzi et al. 2024, arXiv 2411.12537; fla's allow_neg_eigval; " +
        "docs/mechanisms.md#negative-eigenvalues)")]
    public bool NegativeEigenvalues { get; init; }
    [Help("delta_net, gated_delta_net: Householder steps per token, n_h (DeltaProduct, Siems et al. 2025, arXiv 2502.10297): " +
        "each token writes n_h keys and values, one delta step each, its decay on the first and its read after the last; " +
        "1 is the plain rule (docs/mechanisms.md#deltaproduct)"), Range(1, 16)]
    public int HouseholderSteps { get; init; } = 1;
    [Help("mamba2, gated_delta_net, kda, gdn2, comba, mom: smallest initial step dt of the decay g = −A·softplus(a + dt_bias) " +
        "(dt log-uniform in [dt_min, dt_max], Mamba-2's initialisation)"), Range(1e-8, 10)]
    public double DtMin { get; init; } = 1e-3;
    [Help("mamba2, gated_delta_net, kda, gdn2, comba, mom: largest initial step dt (with A ~ U(1, 16), dt_max 0.1 forgets most of a " +
        "write within ~10 tokens at the start of training)"), Range(1e-8, 10)]
    public double DtMax { get; init; } = 0.1;
    [Help("comba: initial value of the output correction D in q − D·σ(d)·k (fla's correction_factor; its authors also suggest " +
        "0.02, which learned MQAR far better in Mnemo's runs; docs/mechanisms.md#comba)"), Range(-10, 10)]
    public double CombaCorrection { get; init; } = 1.0;
    [Help("mesa_net: conjugate-gradient steps per token for the read (H + λ)⁻¹ q (fla's max_cg_step_training, 30); each step " +
        "is one more pass of the gated linear kernel (docs/mechanisms.md#mesanet)"), Range(1, 256)]
    public int CgSteps { get; init; } = 30;
    [Help("mesa_net: start a_proj's bias at this value, so the decay per token starts at σ(bias) (5: 0.993); unset: fla's " +
        "start, a bias near 0 and a decay near 0.5, which forgets a write within a few tokens (docs/mechanisms.md#mesanet)"),
        Range(-20, 20)]
    public double? MesaDecayBias { get; init; }
    [Help("mamba3: the MIMO rank R, R keys, queries and values per token written into one state (1: SISO; the reference's " +
        "MIMO default is 4); costs R times SISO's kernel work (docs/mechanisms.md#mamba-3)"), Range(1, 64)]
    public int MimoRank { get; init; } = 1;

    public IEnumerable<(string, string)> Validate()
    {
        if (DtMin > DtMax) yield return ("dt_min", $"{DtMin} exceeds dt_max {DtMax}");
    }
}
