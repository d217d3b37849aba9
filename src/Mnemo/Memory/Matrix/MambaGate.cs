using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>Mamba-2's data-dependent scalar decay per head, shared by Mamba-2, Gated DeltaNet and the mixture of memories.</summary>
public static class MambaGate
{
    /// <summary>g = −exp(A_log) · softplus(a + dt_bias) for pre-activations a [B, T, H].</summary>
    public static Tensor LogDecay(Tensor a, Tensor aLog, Tensor dtBias) =>
        -aLog.exp() * nn.functional.softplus(a + dtBias);

    /// <summary>A ~ U(1, 16) stored as log A; dt_bias = softplus⁻¹(dt) with dt log-uniform in [dtMin, dtMax]
    /// (the Mamba-2 initialisation: [1e−3, 1e−1], floor 1e−4). Uses the global generator.</summary>
    public static (Parameter ALog, Parameter DtBias) Initial(int heads, double dtMin = 1e-3, double dtMax = 0.1)
    {
        using var scope = NewDisposeScope();
        var a = empty(heads).uniform_(1, 16);
        var dt = (rand(heads) * (Math.Log(dtMax) - Math.Log(dtMin)) + Math.Log(dtMin)).exp().clamp_min(Math.Min(1e-4, dtMin));
        var inverseSoftplus = dt + (-(-dt).expm1()).log();                   // dt + log(1 − e^{−dt})
        return (nn.Parameter(a.log().MoveToOuterDisposeScope()), nn.Parameter(inverseSoftplus.MoveToOuterDisposeScope()));
    }
}
