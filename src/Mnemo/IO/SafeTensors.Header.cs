using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Mnemo.IO;

// Parsing and validation of the JSON header: every rule of the format, each with its SafeTensorsProblem.
public static partial class SafeTensors
{
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
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderNotUtf8, source, null, "header is not valid UTF-8");

        // Syntax first, so that the structural walk below can trust every token.
        int jsonEnd = CheckJsonSyntax(json, source);
        if (json[0] != (byte)'{')
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderNotObject, source, null,
                "header must be a JSON object starting with '{'");
        if (json[jsonEnd..].ContainsAnyExcept((byte)' '))
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderBadPadding, source, null,
                "header may only be padded with spaces after its JSON object");

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
                    throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                        $"\"{MetadataKey}\" appears twice");
                metadata = ReadMetadata(ref reader, source);
            }
            else
            {
                if (!names.Add(key))
                    throw new SafeTensorsFormatException(SafeTensorsProblem.DuplicateTensorName, source, key,
                        "name appears more than once in the header");
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
                // Unescaping is what catches a lone surrogate such as "\ud800".
                if (reader.TokenType is JsonTokenType.PropertyName or JsonTokenType.String) _ = reader.GetString();
                if (reader.CurrentDepth == 0) rootEnd = (int)reader.BytesConsumed;
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
            throw new SafeTensorsFormatException(SafeTensorsProblem.EntryNotObject, source, name,
                $"entry is {Describe(ref reader)}, not an object with dtype, shape and data_offsets");

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
                throw new SafeTensorsFormatException(SafeTensorsProblem.DuplicateField, source, name,
                    $"field \"{field}\" appears twice");

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
            throw new SafeTensorsFormatException(SafeTensorsProblem.ShapeTooLarge, source, name,
                $"{layout} needs more bytes than a 64-bit size can count");
        if (slot.Length != needed)
            throw new SafeTensorsFormatException(SafeTensorsProblem.SizeMismatch, source, name,
                $"data_offsets {slot.Range} give {slot.Length} bytes but {layout} needs {needed}");
        if (slot.End > dataLength)
            throw new SafeTensorsFormatException(SafeTensorsProblem.OffsetsBeyondData, source, name,
                $"data_offsets {slot.Range} end beyond the data buffer of {dataLength} bytes");
        return slot;
    }

    static SafeTensorDType ReadDType(ref Utf8JsonReader reader, string name, string source)
    {
        if (reader.TokenType != JsonTokenType.String)
            throw new SafeTensorsFormatException(SafeTensorsProblem.WrongFieldType, source, name,
                $"dtype must be a string, not {Describe(ref reader)}");
        string text = reader.GetString()!;
        return SafeTensorDTypes.TryParse(text, out var dtype)
            ? dtype
            : throw new SafeTensorsFormatException(SafeTensorsProblem.UnknownDType, source, name,
                $"unknown dtype \"{text}\"");
    }

    static long[] ReadShape(ref Utf8JsonReader reader, string name, string source)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new SafeTensorsFormatException(SafeTensorsProblem.WrongFieldType, source, name,
                $"shape must be an array of integers, not {Describe(ref reader)}");
        var dims = new List<long>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (!TryReadNonNegative(ref reader, out long dim))
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidShape, source, name,
                    $"shape dimension {dims.Count} is {Describe(ref reader)}, not a non-negative integer");
            dims.Add(dim);
        }
        return [.. dims];
    }

    static (long Begin, long End) ReadOffsets(ref Utf8JsonReader reader, string name, string source)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new SafeTensorsFormatException(SafeTensorsProblem.WrongFieldType, source, name,
                $"data_offsets must be an array of two integers, not {Describe(ref reader)}");
        var values = new List<long>(2);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (!TryReadNonNegative(ref reader, out long value))
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidOffsets, source, name,
                    $"data_offsets element {values.Count} is {Describe(ref reader)}, not a non-negative integer");
            values.Add(value);
        }
        if (values.Count != 2)
            throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidOffsets, source, name,
                $"data_offsets must be [begin, end] but has {values.Count} elements");
        if (values[0] > values[1])
            throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidOffsets, source, name,
                $"data_offsets [{values[0]}, {values[1]}] end before they begin");
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
            throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                $"\"{MetadataKey}\" must be an object of strings, not {Describe(ref reader)}");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                    $"\"{MetadataKey}\" value of \"{key}\" is {Describe(ref reader)}, not a string");
            if (!metadata.TryAdd(key, reader.GetString()!))
                throw new SafeTensorsFormatException(SafeTensorsProblem.InvalidMetadata, source, null,
                    $"\"{MetadataKey}\" has the key \"{key}\" twice");
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
            // Sorting guarantees a previous slot, and one that is not empty.
            if (slot.Begin < covered)
                throw new SafeTensorsFormatException(SafeTensorsProblem.Overlap, source, slot.Name,
                    $"data_offsets {slot.Range} overlap tensor \"{previous!.Name}\" at {previous.Range}");
            covered = slot.End;
            previous = slot;
        }
        if (covered != dataLength)
            throw new SafeTensorsFormatException(SafeTensorsProblem.TrailingBytes, source, null,
                $"data buffer has {dataLength} bytes but the tensors cover only {covered}; " +
                $"{dataLength - covered} bytes trail");
        return sorted;
    }
}
