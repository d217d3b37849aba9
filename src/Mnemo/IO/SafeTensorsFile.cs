using System.Diagnostics.CodeAnalysis;

namespace Mnemo.IO;

/// <summary>One tensor: its name, dtype, shape and raw little-endian bytes (exactly dtype size × element count).</summary>
public sealed record SafeTensorEntry(string Name, SafeTensorDType DType, long[] Shape, ReadOnlyMemory<byte> Data);

/// <summary>The validated contents of a safetensors file.</summary>
public sealed class SafeTensorsFile
{
    readonly Dictionary<string, SafeTensorEntry> _byName;

    internal SafeTensorsFile(List<SafeTensorEntry> tensors, Dictionary<string, string> metadata)
    {
        Tensors = tensors.AsReadOnly();
        Metadata = metadata.AsReadOnly();
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The tensors in the order of their data in the file.</summary>
    public IReadOnlyList<SafeTensorEntry> Tensors { get; }

    /// <summary>The "__metadata__" map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensor with this name; throws <see cref="KeyNotFoundException"/> if there is none.</summary>
    public SafeTensorEntry this[string name] =>
        _byName.TryGetValue(name, out var entry) ? entry : throw new KeyNotFoundException($"No tensor named \"{name}\".");

    public bool TryGet(string name, [NotNullWhen(true)] out SafeTensorEntry? entry) => _byName.TryGetValue(name, out entry);

    public bool Contains(string name) => _byName.ContainsKey(name);
}
