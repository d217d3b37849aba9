using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Titans' "⊗" joining an attention branch y and a memory branch m (MAG Eq. 28, MAC Eq. 25): both normalised with
/// learnable vectors, the memory's passed through a sigmoid, then multiplied: o = out_norm(y) ⊙ σ(gate_norm(m)).
/// The paper leaves the non-linearity open; a sigmoid keeps the memory a gate in [0, 1] on the attention's output.
/// </summary>
public sealed class BranchGate : nn.Module<Tensor, Tensor, Tensor>
{
    readonly RMSNorm out_norm, gate_norm;

    public BranchGate(long dim, double eps) : base(nameof(BranchGate))
    {
        out_norm = new RMSNorm(dim, eps);
        gate_norm = new RMSNorm(dim, eps);
        RegisterComponents();
    }

    /// <param name="y">attention branch [B, T, D]</param>
    /// <param name="m">memory branch [B, T, D]</param>
    public override Tensor forward(Tensor y, Tensor m)
    {
        using var scope = NewDisposeScope();
        return (out_norm.forward(y) * gate_norm.forward(m).sigmoid()).MoveToOuterDisposeScope();
    }
}
