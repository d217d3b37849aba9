using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>Feature maps of linear attention (fla's feature_map.py).</summary>
public enum FeatureMapKind { Identity, EluP1, Relu, Taylor }

/// <summary>Linear-attention feature maps (fla's feature_map.py), applied per head over the last dimension.</summary>
public static class FeatureMap
{
    public static Tensor Apply(FeatureMapKind kind, Tensor x) => kind switch
    {
        FeatureMapKind.Identity => x,
        FeatureMapKind.EluP1 => nn.functional.elu(x, 1.0) + 1,
        FeatureMapKind.Relu => nn.functional.relu(x),
        FeatureMapKind.Taylor => Taylor(x),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>
    /// Based's 2nd-order Taylor map: φ(x) = [1, x/d^{1/4}, vec(x⊗x)/(√2·√d)], so φ(q)·φ(k) = 1 + q·k/√d + (q·k)²/(2d)
    /// ≈ exp(q·k/√d). The full outer product is kept (d² terms); it has the same inner products as the
    /// de-duplicated d(d+1)/2 form. Output width 1 + d + d².
    /// </summary>
    static Tensor Taylor(Tensor x)
    {
        long d = x.shape[^1];
        var outer = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2);          // [..., d²]
        return cat([ones_like(x.narrow(-1, 0, 1)), x * Math.Pow(d, -0.25), outer / (Math.Sqrt(2) * Math.Sqrt(d))], -1);
    }
}
