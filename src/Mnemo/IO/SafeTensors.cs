using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

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
        if (name is not null && ByName.TryGetValue(name, out dtype))
        {
            return true;
        }
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
        if (shape.Contains(0))
        {
            return true; // Zero elements however large the other dimensions are.
        }
        long count = 1; // A scalar (shape []) has one element.
        foreach (long dim in shape)
        {
            if (count > long.MaxValue / dim)
            {
                return false;
            }
            count *= dim;
        }
        int size = dtype.ElementSize();
        if (count > long.MaxValue / size)
        {
            return false;
        }
        bytes = count * size;
        return true;
    }

    /// <summary>"F32 × [5, 6]", as used in messages.</summary>
    internal static string Describe(SafeTensorDType dtype, IEnumerable<long> shape) =>
        $"{dtype.ToSpecName()} × [{string.Join(", ", shape)}]";
}

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

/// <summary>What is wrong with a rejected safetensors file; each kind of defect has its own value.</summary>
public enum SafeTensorsProblem
{
    /// <summary>Fewer than the 8 bytes of the header length prefix.</summary>
    FileTooShort,
    /// <summary>The header length is above the caller's limit (or what a .NET array can hold).</summary>
    HeaderTooLarge,
    /// <summary>The header length is larger than the bytes after the prefix.</summary>
    HeaderExceedsFile,
    HeaderNotUtf8,
    HeaderNotJson,
    /// <summary>The header is JSON but not an object starting with '{'.</summary>
    HeaderNotObject,
    /// <summary>Something other than spaces (0x20) follows the header's JSON object.</summary>
    HeaderBadPadding,
    DuplicateTensorName,
    /// <summary>A tensor's entry is not a JSON object.</summary>
    EntryNotObject,
    /// <summary>An entry lacks dtype, shape or data_offsets.</summary>
    MissingField,
    /// <summary>dtype is not a string, or shape or data_offsets is not an array.</summary>
    WrongFieldType,
    UnknownField,
    /// <summary>An entry names the same field twice.</summary>
    DuplicateField,
    UnknownDType,
    /// <summary>A shape dimension is not a non-negative integer.</summary>
    InvalidShape,
    /// <summary>The element count or byte size of a shape overflows a 64-bit integer.</summary>
    ShapeTooLarge,
    /// <summary>data_offsets is not [begin, end] with non-negative integers and begin ≤ end.</summary>
    InvalidOffsets,
    /// <summary>A tensor ends beyond the data buffer.</summary>
    OffsetsBeyondData,
    /// <summary>A tensor's byte range does not match dtype size × product of shape.</summary>
    SizeMismatch,
    /// <summary>Unused bytes before a tensor (the first must start at 0, each next where the previous ended).</summary>
    Gap,
    /// <summary>Two tensors share bytes.</summary>
    Overlap,
    /// <summary>The data buffer is longer than the tensors cover.</summary>
    TrailingBytes,
    /// <summary>"__metadata__" is not an object of string values, or appears twice.</summary>
    InvalidMetadata,
}

/// <summary>A safetensors file or buffer that breaks the format; the message names the file, the tensor and the problem.</summary>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors",
    Justification = "Every instance must carry a Problem and a source name.")]
public sealed class SafeTensorsFormatException : MnemoException
{
    public SafeTensorsFormatException(
        SafeTensorsProblem problem, string sourceName, string? tensorName, string detail, Exception? innerException = null)
        : base(ComposeMessage(sourceName, tensorName, detail), innerException)
    {
        Problem = problem;
        SourceName = sourceName;
        TensorName = tensorName;
    }

    public SafeTensorsProblem Problem { get; }

    /// <summary>The path or name the data was read from.</summary>
    public string SourceName { get; }

    /// <summary>The tensor at fault, if the problem belongs to one.</summary>
    public string? TensorName { get; }

    static string ComposeMessage(string sourceName, string? tensorName, string detail) =>
        tensorName is null ? $"{sourceName}: {detail}" : $"{sourceName}: tensor \"{tensorName}\": {detail}";
}

/// <summary>Strict reader and atomic writer of the Hugging Face safetensors format.</summary>
/// <remarks>
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (optionally padded with spaces),
/// then the data buffer. Each JSON entry maps a tensor name to its dtype, shape and [begin, end) offsets
/// into the data buffer; the optional "__metadata__" entry maps strings to strings.
/// </remarks>
public static class SafeTensors
{
    /// <summary>The default cap on the header length, as in the reference implementation.</summary>
    public const long DefaultMaxHeaderBytes = 100_000_000;

    const int PrefixSize = sizeof(ulong);
    const int Alignment = 8;
    const string MetadataKey = "__metadata__";

    // Names and metadata must survive the round trip exactly, so lone surrogates are refused
    // rather than silently replaced, as the JSON writer would do.
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Keeps non-ASCII names readable in the header; the output is JSON, never embedded in HTML.
    static readonly JsonWriterOptions HeaderWriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    // ---------------------------------------------------------------- reading

    /// <summary>Reads and fully validates a safetensors file.</summary>
    /// <exception cref="SafeTensorsFormatException">The file breaks the format.</exception>
    public static SafeTensorsFile Read(string path, long maxHeaderBytes = DefaultMaxHeaderBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderBytes);

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = stream.Length;
        if (fileLength < PrefixSize)
        {
            throw TooShort(path, fileLength);
        }

        Span<byte> prefix = stackalloc byte[PrefixSize];
        stream.ReadExactly(prefix);
        // Only now, with the length checked against the real file size, is it safe to allocate.
        int headerLength = CheckHeaderLength(prefix, fileLength, maxHeaderBytes, path);
        byte[] headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);

        var header = ParseHeader(headerBytes, fileLength - PrefixSize - headerLength, path);

        // The slots are sorted and contiguous from 0 to the end of the file, so they read back to back.
        var entries = new List<SafeTensorEntry>(header.Slots.Count);
        foreach (var slot in header.Slots)
        {
            byte[] data = slot.Length == 0 ? [] : new byte[slot.ArrayLength(path)];
            stream.ReadExactly(data);
            entries.Add(slot.ToEntry(data));
        }
        return new SafeTensorsFile(entries, header.Metadata);
    }

    /// <summary>Parses and validates a whole safetensors file held in memory.</summary>
    /// <remarks>The entries' data alias <paramref name="bytes"/>; nothing is copied.</remarks>
    /// <exception cref="SafeTensorsFormatException">The bytes break the format.</exception>
    public static SafeTensorsFile Parse(byte[] bytes, string sourceName, long maxHeaderBytes = DefaultMaxHeaderBytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var header = ParseBuffer(bytes, sourceName, maxHeaderBytes, out int dataStart);
        var entries = header.Slots
            .Select(slot => slot.ToEntry(bytes.AsMemory(dataStart + (int)slot.Begin, (int)slot.Length)))
            .ToList();
        return new SafeTensorsFile(entries, header.Metadata);
    }

    /// <summary>Parses and validates a whole safetensors file held in memory, copying each tensor's data.</summary>
    /// <exception cref="SafeTensorsFormatException">The bytes break the format.</exception>
    public static SafeTensorsFile Parse(ReadOnlySpan<byte> bytes, string sourceName, long maxHeaderBytes = DefaultMaxHeaderBytes)
    {
        var header = ParseBuffer(bytes, sourceName, maxHeaderBytes, out int dataStart);
        var entries = new List<SafeTensorEntry>(header.Slots.Count);
        foreach (var slot in header.Slots)
        {
            entries.Add(slot.ToEntry(bytes.Slice(dataStart + (int)slot.Begin, (int)slot.Length).ToArray()));
        }
        return new SafeTensorsFile(entries, header.Metadata);
    }

    static Header ParseBuffer(ReadOnlySpan<byte> bytes, string sourceName, long maxHeaderBytes, out int dataStart)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderBytes);
        if (bytes.Length < PrefixSize)
        {
            throw TooShort(sourceName, bytes.Length);
        }
        int headerLength = CheckHeaderLength(bytes[..PrefixSize], bytes.Length, maxHeaderBytes, sourceName);
        dataStart = PrefixSize + headerLength;
        return ParseHeader(bytes.Slice(PrefixSize, headerLength), bytes.Length - dataStart, sourceName);
    }

    static SafeTensorsFormatException TooShort(string source, long length) =>
        new(SafeTensorsProblem.FileTooShort, source, null,
            $"{length} bytes is too short to hold the 8-byte header length");

    /// <summary>Returns the header length once it is known to fit the limit and the real size of the input.</summary>
    static int CheckHeaderLength(ReadOnlySpan<byte> prefix, long totalLength, long maxHeaderBytes, string source)
    {
        ulong claimed = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (claimed > (ulong)maxHeaderBytes)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderTooLarge, source, null,
                $"header length {claimed} exceeds the limit of {maxHeaderBytes} bytes");
        }
        long available = totalLength - PrefixSize;
        if (claimed > (ulong)available)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderExceedsFile, source, null,
                $"header length {claimed} exceeds the {available} bytes that follow the length prefix");
        }
        if (claimed > (ulong)Array.MaxLength)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderTooLarge, source, null,
                $"header length {claimed} exceeds the largest array .NET can allocate");
        }
        return (int)claimed;
    }

    /// <summary>A validated tensor entry: where its bytes lie in the data buffer.</summary>
    sealed record Slot(string Name, SafeTensorDType DType, long[] Shape, long Begin, long End)
    {
        public long Length => End - Begin;

        public string Range => $"[{Begin}, {End}]";

        public SafeTensorEntry ToEntry(ReadOnlyMemory<byte> data) => new(Name, DType, Shape, data);

        public int ArrayLength(string source) => Length <= Array.MaxLength
            ? (int)Length
            : throw new NotSupportedException(
                $"{source}: tensor \"{Name}\" has {Length} bytes, more than a .NET array can hold.");
    }

    /// <summary>The slots sorted by offset and the metadata.</summary>
    sealed record Header(List<Slot> Slots, Dictionary<string, string> Metadata);

    /// <summary>Validates the whole header against a data buffer of <paramref name="dataLength"/> bytes.</summary>
    static Header ParseHeader(ReadOnlySpan<byte> json, long dataLength, string source)
    {
        // Utf8JsonReader lets invalid UTF-8 through inside strings, so check the bytes first.
        if (!Utf8.IsValid(json))
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderNotUtf8, source, null, "header is not valid UTF-8");
        }

        // Syntax first, so that the structural walk below can trust every token.
        int jsonEnd = CheckJsonSyntax(json, source);
        if (json[0] != (byte)'{')
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderNotObject, source, null,
                "header must be a JSON object starting with '{'");
        }
        if (json[jsonEnd..].ContainsAnyExcept((byte)' '))
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderBadPadding, source, null,
                "header may only be padded with spaces after its JSON object");
        }

        var reader = new Utf8JsonReader(json);
        reader.Read(); // The root's '{'.

        var slots = new List<Slot>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        Dictionary<string, string>? metadata = null;
        // JsonDocument would keep only one of two equal keys; walking the tokens sees both.
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (key == MetadataKey)
            {
                if (metadata is not null)
                {
                    throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                        $"\"{MetadataKey}\" appears twice");
                }
                metadata = ReadMetadata(ref reader, source);
            }
            else
            {
                if (!names.Add(key))
                {
                    throw new SafeTensorsFormatException(SafeTensorsProblem.DuplicateTensorName, source, key,
                        "name appears more than once in the header");
                }
                slots.Add(ReadEntry(ref reader, key, dataLength, source));
            }
        }

        return new Header(SortAndCheckLayout(slots, dataLength, source), metadata ?? new(StringComparer.Ordinal));
    }

    /// <summary>Reads every token once; returns the offset just past the root value.</summary>
    static int CheckJsonSyntax(ReadOnlySpan<byte> json, string source)
    {
        var reader = new Utf8JsonReader(json);
        int rootEnd = 0;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.PropertyName or JsonTokenType.String)
                {
                    // Unescaping is what catches a lone surrogate such as "\ud800".
                    _ = reader.GetString();
                }
                if (reader.CurrentDepth == 0)
                {
                    rootEnd = (int)reader.BytesConsumed;
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderNotJson, source, null,
                $"header is not valid JSON ({e.Message})", e);
        }
        return rootEnd;
    }

    static Slot ReadEntry(ref Utf8JsonReader reader, string name, long dataLength, string source)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.EntryNotObject, source, name,
                $"entry is {Describe(ref reader)}, not an object with dtype, shape and data_offsets");
        }

        SafeTensorDType? dtype = null;
        long[]? shape = null;
        (long Begin, long End)? offsets = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string field = reader.GetString()!;
            bool seen = field switch
            {
                "dtype" => dtype is not null,
                "shape" => shape is not null,
                "data_offsets" => offsets is not null,
                _ => throw new SafeTensorsFormatException(SafeTensorsProblem.UnknownField, source, name,
                    $"unknown field \"{field}\" (allowed: dtype, shape, data_offsets)"),
            };
            if (seen)
            {
                throw new SafeTensorsFormatException(SafeTensorsProblem.DuplicateField, source, name,
                    $"field \"{field}\" appears twice");
            }

            reader.Read();
            switch (field)
            {
                case "dtype":
                    dtype = ReadDType(ref reader, name, source);
                    break;
                case "shape":
                    shape = ReadShape(ref reader, name, source);
                    break;
                default:
                    offsets = ReadOffsets(ref reader, name, source);
                    break;
            }
        }

        if (dtype is null || shape is null || offsets is null)
        {
            string missing = dtype is null ? "dtype" : shape is null ? "shape" : "data_offsets";
            throw new SafeTensorsFormatException(SafeTensorsProblem.MissingField, source, name,
                $"entry has no \"{missing}\"");
        }

        var slot = new Slot(name, dtype.Value, shape, offsets.Value.Begin, offsets.Value.End);
        string layout = SafeTensorDTypes.Describe(slot.DType, slot.Shape);
        if (!SafeTensorDTypes.TryGetByteSize(slot.DType, slot.Shape, out long needed))
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.ShapeTooLarge, source, name,
                $"{layout} needs more bytes than a 64-bit size can count");
        }
        if (slot.Length != needed)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.SizeMismatch, source, name,
                $"data_offsets {slot.Range} give {slot.Length} bytes but {layout} needs {needed}");
        }
        if (slot.End > dataLength)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.OffsetsBeyondData, source, name,
                $"data_offsets {slot.Range} end beyond the data buffer of {dataLength} bytes");
        }
        return slot;
    }

    static SafeTensorDType ReadDType(ref Utf8JsonReader reader, string name, string source)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.WrongFieldType, source, name,
                $"dtype must be a string, not {Describe(ref reader)}");
        }
        string text = reader.GetString()!;
        return SafeTensorDTypes.TryParse(text, out var dtype)
            ? dtype
            : throw new SafeTensorsFormatException(SafeTensorsProblem.UnknownDType, source, name,
                $"unknown dtype \"{text}\"");
    }

    static long[] ReadShape(ref Utf8JsonReader reader, string name, string source)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.WrongFieldType, source, name,
                $"shape must be an array of integers, not {Describe(ref reader)}");
        }
        var dims = new List<long>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (!TryReadNonNegative(ref reader, out long dim))
            {
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidShape, source, name,
                    $"shape dimension {dims.Count} is {Describe(ref reader)}, not a non-negative integer");
            }
            dims.Add(dim);
        }
        return [.. dims];
    }

    static (long Begin, long End) ReadOffsets(ref Utf8JsonReader reader, string name, string source)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.WrongFieldType, source, name,
                $"data_offsets must be an array of two integers, not {Describe(ref reader)}");
        }
        var values = new List<long>(2);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (!TryReadNonNegative(ref reader, out long value))
            {
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidOffsets, source, name,
                    $"data_offsets element {values.Count} is {Describe(ref reader)}, not a non-negative integer");
            }
            values.Add(value);
        }
        if (values.Count != 2)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidOffsets, source, name,
                $"data_offsets must be [begin, end] but has {values.Count} elements");
        }
        if (values[0] > values[1])
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidOffsets, source, name,
                $"data_offsets [{values[0]}, {values[1]}] end before they begin");
        }
        return (values[0], values[1]);
    }

    /// <summary>True for a JSON integer in [0, long.MaxValue]; "1.0" and "1e2" are not integers here.</summary>
    static bool TryReadNonNegative(ref Utf8JsonReader reader, out long value)
    {
        value = 0;
        return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out value) && value >= 0;
    }

    static Dictionary<string, string> ReadMetadata(ref Utf8JsonReader reader, string source)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                $"\"{MetadataKey}\" must be an object of strings, not {Describe(ref reader)}");
        }
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
            {
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                    $"\"{MetadataKey}\" value of \"{key}\" is {Describe(ref reader)}, not a string");
            }
            if (!metadata.TryAdd(key, reader.GetString()!))
            {
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                    $"\"{MetadataKey}\" has the key \"{key}\" twice");
            }
        }
        return metadata;
    }

    /// <summary>Names the current JSON value for a message, e.g. "a string" or "the number -1".</summary>
    static string Describe(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.Number => "the number " + Shorten(Encoding.UTF8.GetString(reader.ValueSpan)),
        _ => reader.TokenType.ToString(),
    };

    static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";

    /// <summary>Sorts by offset and checks the tensors tile the data buffer exactly.</summary>
    static List<Slot> SortAndCheckLayout(List<Slot> slots, long dataLength, string source)
    {
        // Zero-size tensors sort before a tensor starting at the same offset; OrderBy is stable,
        // so equal ranges keep their header order.
        var sorted = slots.OrderBy(s => s.Begin).ThenBy(s => s.End).ToList();
        long covered = 0;
        Slot? previous = null;
        foreach (var slot in sorted)
        {
            if (slot.Begin > covered)
            {
                string after = previous is null
                    ? "the first tensor must start at 0"
                    : $"the previous tensor \"{previous.Name}\" ends at {covered}";
                throw new SafeTensorsFormatException(SafeTensorsProblem.Gap, source, slot.Name,
                    $"data_offsets {slot.Range} leave a gap of {slot.Begin - covered} bytes: {after}");
            }
            if (slot.Begin < covered)
            {
                // Sorting guarantees a previous slot, and one that is not empty.
                throw new SafeTensorsFormatException(SafeTensorsProblem.Overlap, source, slot.Name,
                    $"data_offsets {slot.Range} overlap tensor \"{previous!.Name}\" at {previous.Range}");
            }
            covered = slot.End;
            previous = slot;
        }
        if (covered != dataLength)
        {
            throw new SafeTensorsFormatException(SafeTensorsProblem.TrailingBytes, source, null,
                $"data buffer has {dataLength} bytes but the tensors cover only {covered}; " +
                $"{dataLength - covered} bytes trail");
        }
        return sorted;
    }

    // ---------------------------------------------------------------- writing

    /// <summary>
    /// Writes the tensors, contiguous in the given order, to <paramref name="path"/> atomically: the bytes go to a
    /// temporary file in the same directory, which is flushed to disk and then renamed over the target.
    /// On any failure the temporary file is removed and an existing target is left as it was.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor or the metadata is invalid; nothing is written.</exception>
    public static void Write(string path, IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var layout = Prepare(tensors, metadata); // Validates everything before the disk is touched.

        string target = Path.GetFullPath(path);
        string temp = $"{target}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(layout.Head);
                foreach (var tensor in layout.Tensors)
                {
                    stream.Write(tensor.Data.Span);
                }
                // The rename must not become durable before the bytes it points at.
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
    }

    /// <summary>The bytes <see cref="Write"/> would write.</summary>
    /// <exception cref="ArgumentException">A tensor or the metadata is invalid.</exception>
    public static byte[] Serialize(IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var layout = Prepare(tensors, metadata);
        long total = layout.Head.Length + layout.DataLength;
        if (total > Array.MaxLength)
        {
            throw new ArgumentException($"{total} bytes do not fit in one array; use Write instead.", nameof(tensors));
        }
        byte[] bytes = new byte[total];
        layout.Head.CopyTo(bytes, 0);
        int offset = layout.Head.Length;
        foreach (var tensor in layout.Tensors)
        {
            tensor.Data.Span.CopyTo(bytes.AsSpan(offset));
            offset += tensor.Data.Length;
        }
        return bytes;
    }

    /// <summary>The length prefix and padded header, and the tensors whose data follow them in order.</summary>
    sealed record Layout(byte[] Head, List<SafeTensorEntry> Tensors, long DataLength);

    static Layout Prepare(IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList(); // Enumerate once: validation and writing must see the same entries.
        var names = new HashSet<string>(StringComparer.Ordinal);

        var json = new ArrayBufferWriter<byte>();
        long offset = 0;
        using (var writer = new Utf8JsonWriter(json, HeaderWriterOptions))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    RequireValidText(key, "A metadata key", nameof(metadata));
                    RequireValidText(value, $"The metadata value of \"{key}\"", nameof(metadata));
                    writer.WriteString(key, value);
                }
                writer.WriteEndObject();
            }
            foreach (var tensor in list)
            {
                long size = ValidateForWrite(tensor, names, nameof(tensors));
                writer.WriteStartObject(tensor.Name);
                writer.WriteString("dtype", tensor.DType.ToSpecName());
                writer.WriteStartArray("shape");
                foreach (long dim in tensor.Shape)
                {
                    writer.WriteNumberValue(dim);
                }
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset = offset <= long.MaxValue - size
                    ? offset + size
                    : throw new ArgumentException("The tensors add up to more bytes than a file can hold.", nameof(tensors));
                writer.WriteNumberValue(offset);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }

        // Pad with spaces so the data buffer starts 8-byte aligned (the prefix is 8 bytes too).
        int headerLength = (json.WrittenCount + Alignment - 1) / Alignment * Alignment;
        byte[] head = new byte[PrefixSize + headerLength];
        BinaryPrimitives.WriteUInt64LittleEndian(head, (ulong)headerLength);
        json.WrittenSpan.CopyTo(head.AsSpan(PrefixSize));
        head.AsSpan(PrefixSize + json.WrittenCount).Fill((byte)' ');
        return new Layout(head, list, offset);
    }

    /// <summary>Checks one entry against the same rules the reader enforces; returns its byte size.</summary>
    static long ValidateForWrite(SafeTensorEntry? tensor, HashSet<string> names, string param)
    {
        if (tensor is null)
        {
            throw new ArgumentException("A tensor entry is null.", param);
        }
        string name = tensor.Name;
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException("A tensor name is empty.", param);
        }
        if (name == MetadataKey)
        {
            throw new ArgumentException($"The tensor name \"{MetadataKey}\" is reserved for metadata.", param);
        }
        RequireValidText(name, "A tensor name", param);
        if (!names.Add(name))
        {
            throw new ArgumentException($"Tensor \"{name}\" appears more than once.", param);
        }
        if (!Enum.IsDefined(tensor.DType))
        {
            throw new ArgumentException($"Tensor \"{name}\" has an undefined dtype {(int)tensor.DType}.", param);
        }
        if (tensor.Shape is null)
        {
            throw new ArgumentException($"Tensor \"{name}\" has no shape.", param);
        }
        if (tensor.Shape.Any(dim => dim < 0))
        {
            throw new ArgumentException($"Tensor \"{name}\" has a negative dimension in [{string.Join(", ", tensor.Shape)}].", param);
        }
        string layout = SafeTensorDTypes.Describe(tensor.DType, tensor.Shape);
        if (!SafeTensorDTypes.TryGetByteSize(tensor.DType, tensor.Shape, out long size))
        {
            throw new ArgumentException($"Tensor \"{name}\": {layout} needs more bytes than a 64-bit size can count.", param);
        }
        if (tensor.Data.Length != size)
        {
            throw new ArgumentException($"Tensor \"{name}\": data has {tensor.Data.Length} bytes but {layout} needs {size}.", param);
        }
        return size;
    }

    static void RequireValidText(string? text, string what, string paramName)
    {
        if (text is null)
        {
            throw new ArgumentException($"{what} is null.", paramName);
        }
        try
        {
            StrictUtf8.GetByteCount(text);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"{what} (\"{text}\") is not valid UTF-16 text.", paramName, e);
        }
    }

    static void DeleteQuietly(string path)
    {
        // Best effort: the exception that brought us here is the one worth reporting.
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
