using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>
/// What the hand-fused CPU loops (FusedNorms, FusedStep, FusedChunk) share: a contiguous fp32 CPU tensor's floats as a
/// span or an address, loads of 8 of them into a Vector256 register, and e^x over 16 lanes.
/// </summary>
public static class FloatLanes
{
    /// <summary>Floats in a Vector256.</summary>
    public const int Width = 8;

    /// <summary>The tensor's storage as floats; the tensor must be a contiguous fp32 CPU tensor.</summary>
    public static Span<float> Floats(Tensor t) => MemoryMarshal.Cast<byte, float>(t.bytes);

    /// <summary>The address of the first float of a contiguous fp32 CPU tensor, for the fused kernels' pointer loops.</summary>
    public static unsafe float* Address(Tensor t) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(Floats(t)));

    /// <summary>
    /// e^x in fp32 lanes: x = k ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two so k ln 2 stays exact), e^r by its Taylor
    /// series to r⁷ (truncation below 1e-8 relative), times 2^k built in the exponent bits; 0 below −87 (under the
    /// smallest normal float). Here rather than Vector512.Exp: that one is a generic method the runtime first runs
    /// unoptimized, and the fused chunk kernels, called a few hundred times in a short training run, spent most of
    /// their time there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var t = Vector512.Min(Vector512.Max(x, Vector512.Create(-87f)), Vector512.Create(88f));
        var k = Vector512.Round(t * Vector512.Create(1.44269504f));                       // log₂ e
        var r = t - k * Vector512.Create(0.693359375f) - k * Vector512.Create(-2.12194440e-4f);
        var p = Vector512.Create(1f / 5040);                                              // Horner: 1/7!, 1/6!, …, 1/0!
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(k) + Vector512.Create(127), 23).AsSingle();
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(-87f)), Vector512<float>.Zero, p * scale);
    }

    /// <summary>Floats at … at + 7.</summary>
    public static Vector256<float> Load(ReadOnlySpan<float> s, int at) => Vector256.Create(s.Slice(at, Width));
}
