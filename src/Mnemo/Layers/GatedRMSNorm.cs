using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// RMSNorm over the last dimension with an optional SiLU gate: y = RMSNorm(x) ⊙ silu(gate) (fla's
/// FusedRMSNormGated, the "norm-gate" on memory outputs), or with gateFirst y = RMSNorm(x ⊙ silu(gate))
/// (Mamba-2's RMSNormGated with norm_before_gate = False). Parameter "weight".
/// </summary>
public sealed class GatedRMSNorm : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly Parameter weight;
    readonly double _eps;
    readonly bool _gateFirst;

    public GatedRMSNorm(long dim, double eps = 1e-5, bool gateFirst = false) : base(nameof(GatedRMSNorm))
    {
        weight = nn.Parameter(ones(dim));
        _eps = eps;
        _gateFirst = gateFirst;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor? gate)
    {
        if (FusedNorms.Applies(x) && (gate is null || FusedNorms.Applies(gate)))
            return FusedNorms.RmsNorm(x, weight, gate, _eps, _gateFirst);
        using var scope = NewDisposeScope();
        if (gate is not null && _gateFirst)
            return (RMSNorm.Normalize(x * nn.functional.silu(gate), _eps) * weight).MoveToOuterDisposeScope();
        var y = RMSNorm.Normalize(x, _eps) * weight;
        if (gate is not null) y = y * nn.functional.silu(gate);
        return y.MoveToOuterDisposeScope();
    }
}
