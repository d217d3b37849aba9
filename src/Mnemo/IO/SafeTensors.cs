using System.Buffers.Binary;

namespace Mnemo.IO;

/// <summary>Strict reader and atomic writer of the Hugging Face safetensors format.</summary>
/// <remarks>
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (optionally padded with spaces),
/// then the data buffer. Each JSON entry maps a tensor name to its dtype, shape and [begin, end) offsets
/// into the data buffer; the optional "__metadata__" entry maps strings to strings.
/// This file reads; SafeTensors.Header.cs validates the header and SafeTensors.Writing.cs writes.
/// </remarks>
public static partial class SafeTensors
{
    /// <summary>The default cap on the header length, as in the reference implementation.</summary>
    public const long DefaultMaxHeaderBytes = 100_000_000;

    const int PrefixSize = sizeof(ulong);
    const int Alignment = 8;
    const string MetadataKey = "__metadata__";

    /// <summary>Reads and fully validates a safetensors file.</summary>
    /// <exception cref="SafeTensorsFormatException">The file breaks the format.</exception>
    public static SafeTensorsFile Read(string path, long maxHeaderBytes = DefaultMaxHeaderBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderBytes);

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = stream.Length;
        if (fileLength < PrefixSize) throw TooShort(path, fileLength);

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
            entries.Add(slot.ToEntry(bytes.Slice(dataStart + (int)slot.Begin, (int)slot.Length).ToArray()));
        return new SafeTensorsFile(entries, header.Metadata);
    }

    static Header ParseBuffer(ReadOnlySpan<byte> bytes, string sourceName, long maxHeaderBytes, out int dataStart)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        ArgumentOutOfRangeException.ThrowIfNegative(maxHeaderBytes);
        if (bytes.Length < PrefixSize) throw TooShort(sourceName, bytes.Length);
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
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderTooLarge, source, null,
                $"header length {claimed} exceeds the limit of {maxHeaderBytes} bytes");
        long available = totalLength - PrefixSize;
        if (claimed > (ulong)available)
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderExceedsFile, source, null,
                $"header length {claimed} exceeds the {available} bytes that follow the length prefix");
        if (claimed > (ulong)Array.MaxLength)
            throw new SafeTensorsFormatException(SafeTensorsProblem.HeaderTooLarge, source, null,
                $"header length {claimed} exceeds the largest array .NET can allocate");
        return (int)claimed;
    }
}
