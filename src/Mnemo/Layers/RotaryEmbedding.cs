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
    public static Tensor Apply(Tensor x, long offset = 0, double theta = 10000.0)
    {
        using var scope = NewDisposeScope();
        long t = x.shape[1], d = x.shape[3], half = d / 2;
        // Angles in fp64: positions reach millions when streaming, and fp32 would round t·θ_i.
        var invFreq = pow(theta, -arange(0, half, dtype: float64) * 2.0 / d);          // [D/2]
        var pos = arange(offset, offset + t, dtype: float64);                             // [T]
        var angles = outer(pos, invFreq);                                                 // [T, D/2]
        var cos = angles.cos().repeat(1, 2).view(1, t, 1, d).to(x.dtype);                 // [1, T, 1, D]
        var sin = angles.sin().repeat(1, 2).view(1, t, 1, d).to(x.dtype);
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);         // (−x2, x1)
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}
