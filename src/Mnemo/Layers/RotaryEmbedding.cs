using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Rotary position embedding (Su et al.), "rotate half" layout as in fla/Llama: channel i pairs with i + D/2,
/// rotated by angle t·θ_i with θ_i = base^(−2i/D).
/// </summary>
public static class RotaryEmbedding
{
    /// <param name="x">[B, T, H, D] with D even</param>
    /// <param name="offset">position of x's first token (for streaming)</param>
    public static Tensor Apply(Tensor x, long offset = 0, double theta = 10000.0) =>
        ApplyAt(x, arange(offset, offset + x.shape[1], dtype: float64).view(1, x.shape[1], 1), theta);

    /// <summary>x [..., D] (D even) rotated at <paramref name="positions"/>, which broadcast against x's leading
    /// dimensions (x.shape without D): one position per vector.</summary>
    public static Tensor ApplyAt(Tensor x, Tensor positions, double theta = 10000.0)
    {
        using var scope = NewDisposeScope();
        long d = x.shape[^1], half = d / 2;
        // Angles in fp64: positions reach millions when streaming, and fp32 would round t·θ_i.
        var invFreq = pow(theta, -arange(0, half, dtype: float64, device: x.device) * 2.0 / d);       // [D/2]
        var angles = positions.to(float64).to(x.device).unsqueeze(-1) * invFreq;                       // [..., D/2]
        var cos = cat([angles.cos(), angles.cos()], -1).to(x.dtype);                                  // [..., D]
        var sin = cat([angles.sin(), angles.sin()], -1).to(x.dtype);
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);                     // (−x2, x1)
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}
