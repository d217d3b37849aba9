using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// RMSNorm over the last dimension followed by an optional SiLU gate: y = RMSNorm(x) ⊙ silu(gate)
/// (fla's FusedRMSNormGated / "norm-gate" on memory outputs; parameter "weight").
/// </summary>
public sealed class GatedRMSNorm : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly Parameter weight;
    readonly double _eps;

    public GatedRMSNorm(long dim, double eps = 1e-5) : base(nameof(GatedRMSNorm))
    {
        weight = nn.Parameter(ones(dim));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor? gate)
    {
        using var scope = NewDisposeScope();
        var y = RMSNorm.Normalize(x, _eps) * weight;
        if (gate is not null) y = y * nn.functional.silu(gate);
        return y.MoveToOuterDisposeScope();
    }
}
