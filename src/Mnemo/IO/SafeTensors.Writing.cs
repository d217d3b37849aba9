using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Mnemo.IO;

// Writing: the header is built and every entry checked against the reader's rules before any byte is written.
public static partial class SafeTensors
{
    // Names and metadata must survive the round trip exactly, so lone surrogates are refused
    // rather than silently replaced, as the JSON writer would do.
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Keeps non-ASCII names readable in the header; the output is JSON, never embedded in HTML.
    static readonly JsonWriterOptions HeaderWriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Writes the tensors, contiguous in the given order, to <paramref name="path"/> through <see cref="AtomicFile"/>:
    /// to a flushed temporary file renamed over the target (so a failure leaves an existing target as it was), or in
    /// place when the target is a character device or pipe; a directory or other special file is refused.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor or the metadata is invalid; nothing is written.</exception>
    public static void Write(
        string path, IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var layout = Prepare(tensors, metadata); // Validates everything before the disk is touched.
        AtomicFile.Write(path, stream =>
        {
            stream.Write(layout.Head);
            foreach (var tensor in layout.Tensors) stream.Write(tensor.Data.Span);
        });
    }

    /// <summary>The bytes <see cref="Write"/> would write.</summary>
    /// <exception cref="ArgumentException">A tensor or the metadata is invalid.</exception>
    public static byte[] Serialize(IEnumerable<SafeTensorEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var layout = Prepare(tensors, metadata);
        long total = layout.Head.Length + layout.DataLength;
        if (total > Array.MaxLength)
            throw new ArgumentException($"{total} bytes do not fit in one array; use Write instead.", nameof(tensors));
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
                foreach (long dim in tensor.Shape) writer.WriteNumberValue(dim);
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
        if (tensor is null) throw new ArgumentException("A tensor entry is null.", param);
        string name = tensor.Name;
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("A tensor name is empty.", param);
        if (name == MetadataKey)
            throw new ArgumentException($"The tensor name \"{MetadataKey}\" is reserved for metadata.", param);
        RequireValidText(name, "A tensor name", param);
        if (!names.Add(name)) throw new ArgumentException($"Tensor \"{name}\" appears more than once.", param);
        if (!Enum.IsDefined(tensor.DType))
            throw new ArgumentException($"Tensor \"{name}\" has an undefined dtype {(int)tensor.DType}.", param);
        if (tensor.Shape is null) throw new ArgumentException($"Tensor \"{name}\" has no shape.", param);
        if (tensor.Shape.Any(dim => dim < 0))
            throw new ArgumentException(
                $"Tensor \"{name}\" has a negative dimension in [{string.Join(", ", tensor.Shape)}].", param);
        string layout = SafeTensorDTypes.Describe(tensor.DType, tensor.Shape);
        if (!SafeTensorDTypes.TryGetByteSize(tensor.DType, tensor.Shape, out long size))
            throw new ArgumentException($"Tensor \"{name}\": {layout} needs more bytes than a 64-bit size can count.", param);
        if (tensor.Data.Length != size)
            throw new ArgumentException($"Tensor \"{name}\": data has {tensor.Data.Length} bytes but {layout} needs {size}.", param);
        return size;
    }

    static void RequireValidText(string? text, string what, string paramName)
    {
        if (text is null) throw new ArgumentException($"{what} is null.", paramName);
        try { StrictUtf8.GetByteCount(text); }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"{what} (\"{text}\") is not valid UTF-16 text.", paramName, e);
        }
    }
}
