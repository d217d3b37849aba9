using Mnemo.Layers;
using Mnemo.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix.Rules;

/// <summary>
/// Gated DeltaNet (Yang, Kautz, Hatamizadeh 2024; docs/mechanisms.md#gated-deltanet): the delta rule with a Mamba-2-style
/// per-head decay g_t = −exp(A_log) · softplus(a_proj x_t + dt_bias), β_t = σ(b_proj x_t), L2-normalised q, k,
/// and the output gated by silu(g_proj x).
/// </summary>
public sealed class GatedDeltaNet : MatrixMemoryMixer
{
    readonly Linear a_proj, b_proj;
    readonly Parameter A_log, dt_bias;

    public GatedDeltaNet(ModelConfig c) : base(nameof(GatedDeltaNet), c, outputGate: true)
    {
        a_proj = nn.Linear(c.DModel, c.NumHeads, hasBias: false);
        b_proj = nn.Linear(c.DModel, c.NumHeads, hasBias: false);
        (A_log, dt_bias) = MambaGate.Initial(c.NumHeads);
        RegisterComponents();
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.Delta;

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => UnitNormFeatures(q, k);

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) =>
        (MambaGate.LogDecay(a_proj.forward(x), A_log, dt_bias), b_proj.forward(x).sigmoid());
}

/// <summary>Mamba-2's data-dependent scalar decay per head, shared by Mamba-2 and Gated DeltaNet.</summary>
public static class MambaGate
{
    /// <summary>g = −exp(A_log) · softplus(a + dt_bias) for pre-activations a [B, T, H].</summary>
    public static Tensor LogDecay(Tensor a, Tensor aLog, Tensor dtBias) =>
        -aLog.exp() * nn.functional.softplus(a + dtBias);

    /// <summary>A ~ U(1, 16) stored as log A; dt_bias = softplus⁻¹(dt) with dt log-uniform in [1e−3, 1e−1]
    /// (the Mamba-2 initialisation). Uses the global generator.</summary>
    public static (Parameter ALog, Parameter DtBias) Initial(int heads)
    {
        using var scope = NewDisposeScope();
        var a = empty(heads).uniform_(1, 16);
        var dt = (rand(heads) * (Math.Log(0.1) - Math.Log(1e-3)) + Math.Log(1e-3)).exp().clamp_min(1e-4);
        var inverseSoftplus = dt + (-(-dt).expm1()).log();                   // dt + log(1 − e^{−dt})
        return (nn.Parameter(a.log().MoveToOuterDisposeScope()), nn.Parameter(inverseSoftplus.MoveToOuterDisposeScope()));
    }
}
