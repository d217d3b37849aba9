using System.Diagnostics.CodeAnalysis;

namespace Mnemo.IO;

/// <summary>Element types of the safetensors format. See <see cref="SafeTensorDTypes"/> for sizes and spec names.</summary>
public enum SafeTensorDType
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    BOOL,
    U64,
    U32,
    U16,
    /// <summary>Spec name "F8_E4M3".</summary>
    F8E4M3,
    /// <summary>Spec name "F8_E5M2".</summary>
    F8E5M2,
}

/// <summary>Element sizes and the spec's names ("F32", "BF16", "F8_E4M3", ...) of <see cref="SafeTensorDType"/>.</summary>
public static class SafeTensorDTypes
{
    // The reverse of ToSpecName, built from it so the two cannot disagree.
    static readonly Dictionary<string, SafeTensorDType> ByName =
        Enum.GetValues<SafeTensorDType>().ToDictionary(ToSpecName, StringComparer.Ordinal);

    /// <summary>Every supported dtype.</summary>
    public static IReadOnlyList<SafeTensorDType> All { get; } = Enum.GetValues<SafeTensorDType>();

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 or SafeTensorDType.U64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 or SafeTensorDType.U32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.I16 or SafeTensorDType.U16 => 2,
        SafeTensorDType.I8 or SafeTensorDType.U8 or SafeTensorDType.BOOL
            or SafeTensorDType.F8E4M3 or SafeTensorDType.F8E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>The name the safetensors header uses for this dtype.</summary>
    public static string ToSpecName(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F8E4M3 => "F8_E4M3",
        SafeTensorDType.F8E5M2 => "F8_E5M2",
        _ when Enum.IsDefined(dtype) => dtype.ToString(),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>Parses a spec name; exact and case-sensitive, as the format requires.</summary>
    public static bool TryParse([NotNullWhen(true)] string? name, out SafeTensorDType dtype)
    {
        if (name is not null && ByName.TryGetValue(name, out dtype)) return true;
        dtype = default;
        return false;
    }

    /// <summary>Parses a spec name or throws <see cref="FormatException"/>.</summary>
    public static SafeTensorDType Parse(string name) =>
        TryParse(name, out var dtype) ? dtype : throw new FormatException($"\"{name}\" is not a safetensors dtype.");

    /// <summary>Bytes needed by a tensor of this dtype and shape; false if that does not fit in a long.</summary>
    internal static bool TryGetByteSize(SafeTensorDType dtype, IReadOnlyList<long> shape, out long bytes)
    {
        bytes = 0;
        if (shape.Contains(0)) return true;      // Zero elements however large the other dimensions are.
        long count = 1;                          // A scalar (shape []) has one element.
        foreach (long dim in shape)
        {
            if (count > long.MaxValue / dim) return false;
            count *= dim;
        }
        int size = dtype.ElementSize();
        if (count > long.MaxValue / size) return false;
        bytes = count * size;
        return true;
    }

    /// <summary>"F32 × [5, 6]", as used in messages.</summary>
    internal static string Describe(SafeTensorDType dtype, IEnumerable<long> shape) =>
        $"{dtype.ToSpecName()} × [{string.Join(", ", shape)}]";
}
