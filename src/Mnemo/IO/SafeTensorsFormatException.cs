using System.Diagnostics.CodeAnalysis;

namespace Mnemo.IO;

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

/// <summary>
/// A safetensors file or buffer that breaks the format; the message names the file, the tensor and the problem.
/// </summary>
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
