using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>
/// What the hand-fused CPU loops (FusedNorms, FusedStep) share: a contiguous fp32 CPU tensor's floats as a span, and
/// loads of 8 of them into a Vector256 register.
/// </summary>
public static class FloatLanes
{
    /// <summary>Floats in a Vector256.</summary>
    public const int Width = 8;

    /// <summary>The tensor's storage as floats; the tensor must be a contiguous fp32 CPU tensor.</summary>
    public static Span<float> Floats(Tensor t) => MemoryMarshal.Cast<byte, float>(t.bytes);

    /// <summary>The address of the first float of a contiguous fp32 CPU tensor, for the fused kernels' pointer loops.</summary>
    public static unsafe float* Address(Tensor t) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(Floats(t)));

    /// <summary>Floats at … at + 7.</summary>
    public static Vector256<float> Load(ReadOnlySpan<float> s, int at) => Vector256.Create(s.Slice(at, Width));
}
