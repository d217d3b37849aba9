using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>y = x / sqrt(mean(x²) + ε) · weight, over the last dimension (fla: RMSNorm, parameter "weight").</summary>
public sealed class RMSNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly double _eps;

    public RMSNorm(long dim, double eps = 1e-5) : base(nameof(RMSNorm))
    {
        weight = nn.Parameter(ones(dim));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (FusedNorms.Applies(x)) return FusedNorms.RmsNorm(x, weight, null, _eps);
        using var scope = NewDisposeScope();
        return (Normalize(x, _eps) * weight).MoveToOuterDisposeScope();
    }

    /// <summary>x / sqrt(mean(x²) + ε) over the last dimension, computed in at least fp32 (the mean of squares is
    /// the fragile part in low precision) and returned in x's dtype.</summary>
    public static Tensor Normalize(Tensor x, double eps)
    {
        using var scope = NewDisposeScope();
        var xf = x.dtype == float64 ? x : x.to(float32);
        return (xf * rsqrt(xf.square().mean([-1], keepdim: true) + eps)).to(x.dtype).MoveToOuterDisposeScope();
    }
}
