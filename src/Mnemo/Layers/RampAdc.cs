using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// An activation computed by a ramp ADC with b bits, as an analog crossbar would read it (docs/mechanisms.md#analog-adc-activations):
/// the comparator counts the steps of a ramp whose shape is f⁻¹ until it passes the input, so the code k is how many of
/// the L = 2^b levels f(x) has reached, and the output is the middle of the level:
/// <code>
/// u = (f(x) − lo) / (hi − lo) + ε,   k = clamp(⌊L·u⌋, 0, L − 1),   y = lo + (hi − lo)(k + ½) / L
/// </code>
/// with comparator noise ε ~ N(0, (σ/L)²) (σ in units of one level). The backward is f's own derivative (straight
/// through), so a network can be trained with the ADC in the loop.
/// </summary>
public static class RampAdc
{
    /// <summary>y [same shape as x]: f(x) read by a b-bit ramp ADC over f's range [lo, hi]; bits 0 = f(x) exactly.</summary>
    public static Tensor Read(Tensor x, Func<Tensor, Tensor> f, double lo, double hi, int bits, double noise = 0,
        Generator? generator = null)
    {
        if (bits < 0 || bits > 24) throw new ArgumentOutOfRangeException(nameof(bits), bits, "ADC bits must be in [0, 24]");
        var exact = f(x);
        if (bits == 0) return exact;
        using var scope = NewDisposeScope();
        double levels = Math.Pow(2, bits);
        var u = (exact.detach() - lo) / (hi - lo);
        if (noise > 0) u = u + noise / levels * randn(u.shape, dtype: u.dtype, device: u.device, generator: generator);
        var k = (u * levels).floor().clamp(0, levels - 1);
        var read = lo + (hi - lo) * (k + 0.5) / levels;
        return (exact + (read - exact.detach())).MoveToOuterDisposeScope();             // the value read, f's gradient
    }

    /// <summary>σ(x) over [0, 1].</summary>
    public static Tensor Sigmoid(Tensor x, int bits, double noise = 0, Generator? generator = null) =>
        Read(x, t => t.sigmoid(), 0, 1, bits, noise, generator);

    /// <summary>tanh(x) over [−1, 1].</summary>
    public static Tensor Tanh(Tensor x, int bits, double noise = 0, Generator? generator = null) =>
        Read(x, t => t.tanh(), -1, 1, bits, noise, generator);
}
