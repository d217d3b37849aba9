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
        using var scope = NewDisposeScope();
        // Normalise in fp32 even for low-precision inputs: the mean of squares is the fragile part.
        var xf = x.to(float32);
        var y = xf * rsqrt(xf.square().mean([-1], keepdim: true) + _eps);
        return (y.to(x.dtype) * weight).MoveToOuterDisposeScope();
    }
}
