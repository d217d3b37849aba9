using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>Feature maps φ applied to keys and queries before a deep memory (ATLAS §4: more capacity per key).</summary>
public enum MemoryFeatureMapKind { None, Polynomial, Taylor }

/// <summary>
/// Degree-2 feature maps: φ(x) = [a₀, a₁x, a₂ vec(x ⊗ x)], width 1 + d + d². Polynomial fixes a = (1, 1, 1);
/// Taylor learns a, initialised to ATLAS's exponential-series coefficients a_i = 1/i! = (1, 1, ½). With unit-norm
/// keys φ(q)·φ(k) = a₀² + a₁²(q·k) + a₂²(q·k)², a polynomial kernel on the memory's input.
/// Decision: the tensor-power form (capacity O(d²) for a matrix memory, as ATLAS argues), not an elementwise
/// polynomial that keeps the width d (one third-party reading); degree ≤ 2 keeps the width CPU-sized.
/// </summary>
public static class MemoryFeatureMap
{
    public static long Width(MemoryFeatureMapKind kind, long d) => kind == MemoryFeatureMapKind.None ? d : 1 + d + d * d;

    /// <summary>x [..., d] → φ(x) [..., Width]; <paramref name="coefficients"/> [3] (a₀, a₁, a₂).</summary>
    public static Tensor Apply(Tensor x, Tensor coefficients)
    {
        var outer = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2);          // [..., d²]
        var a = coefficients.to(x.dtype);
        return cat([a[0] * ones_like(x.narrow(-1, 0, 1)), a[1] * x, a[2] * outer], -1);
    }

    public static double[] InitialCoefficients(MemoryFeatureMapKind kind) => kind == MemoryFeatureMapKind.Taylor ? [1, 1, 0.5] : [1, 1, 1];
}
