using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Mnemo.IO;
using Xunit;

namespace Mnemo.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    const string SourceName = "model.safetensors";

    readonly string _dir = Directory.CreateTempSubdirectory("safetensors-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string PathOf(string name) => Path.Combine(_dir, name);

    // ------------------------------------------------------------ helpers

    static readonly long[][] Shapes = [[], [0], [3], [2, 3], [2, 0, 4], [1, 2, 3, 2]];

    static SafeTensorEntry RandomTensor(Random random, string name, SafeTensorDType dtype, long[] shape)
    {
        long count = shape.Aggregate(1L, (product, dim) => product * dim);
        byte[] data = new byte[count * dtype.ElementSize()];
        random.NextBytes(data);
        return new SafeTensorEntry(name, dtype, shape, data);
    }

    /// <summary>A header JSON object of the given raw name and entry texts.</summary>
    static string HeaderOf(params (string Name, string Entry)[] tensors) =>
        "{" + string.Join(",", tensors.Select(t => $"\"{t.Name}\":{t.Entry}")) + "}";

    /// <summary>A header holding one tensor "w".</summary>
    static string OneTensor(string entry) => HeaderOf(("w", entry));

    /// <summary>An entry from raw JSON texts of its three fields.</summary>
    static string Entry(string dtype, string shape, string offsets) =>
        "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";

    /// <summary>A file by hand: little-endian length of <paramref name="header"/>, the header, then the data.</summary>
    static byte[] FileOf(byte[] header, byte[] data)
    {
        byte[] file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    static byte[] FileOf(string header, int dataLength = 0) => FileOf(Encoding.UTF8.GetBytes(header), new byte[dataLength]);

    /// <summary>A file whose length prefix claims <paramref name="headerLength"/> whatever follows.</summary>
    static byte[] ClaimingHeaderLength(ulong headerLength, string rest)
    {
        byte[] file = FileOf(rest);
        BinaryPrimitives.WriteUInt64LittleEndian(file, headerLength);
        return file;
    }

    /// <summary>
    /// Asserts that Read and both Parse overloads reject <paramref name="file"/> for the same
    /// <paramref name="problem"/>, blaming <paramref name="tensorName"/>, and naming the file and tensor in the message.
    /// </summary>
    SafeTensorsFormatException AssertRejected(
        byte[] file, SafeTensorsProblem problem, string? tensorName = null,
        long maxHeaderBytes = SafeTensors.DefaultMaxHeaderBytes)
    {
        string path = PathOf("bad.safetensors");
        File.WriteAllBytes(path, file);
        var errors = new[]
        {
            Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Read(path, maxHeaderBytes)),
            Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Parse(file, SourceName, maxHeaderBytes)),
            Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Parse((ReadOnlySpan<byte>)file, SourceName, maxHeaderBytes)),
        };
        Assert.StartsWith(path + ": ", errors[0].Message, StringComparison.Ordinal);
        Assert.StartsWith(SourceName + ": ", errors[1].Message, StringComparison.Ordinal);
        foreach (var error in errors)
        {
            Assert.Equal(problem, error.Problem);
            Assert.Equal(tensorName, error.TensorName);
            if (tensorName is not null)
            {
                Assert.Contains($"tensor \"{tensorName}\"", error.Message, StringComparison.Ordinal);
            }
        }
        return errors[1];
    }

    static void AssertSameTensor(SafeTensorEntry expected, SafeTensorEntry actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.DType, actual.DType);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.Data.ToArray(), actual.Data.ToArray());
    }

    // ------------------------------------------------------------ dtypes

    [Fact]
    public void DTypes_HaveTheSpecNamesAndSizes()
    {
        var expected = new Dictionary<string, int>
        {
            ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1,
            ["U8"] = 1, ["BOOL"] = 1, ["U64"] = 8, ["U32"] = 4, ["U16"] = 2, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1,
        };
        Assert.Equal(expected.Keys.Order(), SafeTensorDTypes.All.Select(d => d.ToSpecName()).Order());
        foreach (var (name, size) in expected)
        {
            var dtype = SafeTensorDTypes.Parse(name);
            Assert.Equal(name, dtype.ToSpecName());
            Assert.Equal(size, dtype.ElementSize());
        }
        Assert.False(SafeTensorDTypes.TryParse("f32", out _)); // The spec's names are case-sensitive.
        Assert.False(SafeTensorDTypes.TryParse("F8E4M3", out _));
        Assert.False(SafeTensorDTypes.TryParse("1", out _));
        Assert.Throws<FormatException>(() => SafeTensorDTypes.Parse("F128"));
    }

    // ------------------------------------------------------------ round trips

    public static TheoryData<SafeTensorDType> AllDTypes() => new(SafeTensorDTypes.All);

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void WriteThenRead_RoundTripsEveryShapeOfDType(SafeTensorDType dtype)
    {
        var random = new Random(1234 + (int)dtype);
        var tensors = Shapes.Select((shape, i) => RandomTensor(random, $"layer.{i}.{dtype}", dtype, shape)).ToList();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode ✓ \"quoted\"" };
        string path = PathOf("model.safetensors");

        SafeTensors.Write(path, tensors, metadata);
        var file = SafeTensors.Read(path);

        Assert.Equal(tensors.Count, file.Tensors.Count);
        for (int i = 0; i < tensors.Count; i++)
        {
            AssertSameTensor(tensors[i], file.Tensors[i]); // Written contiguously in order, read in offset order.
            AssertSameTensor(tensors[i], file[tensors[i].Name]);
        }
        Assert.Equal(metadata.OrderBy(p => p.Key), file.Metadata.OrderBy(p => p.Key));
        Assert.True(file.TryGet(tensors[0].Name, out var scalar));
        Assert.Empty(scalar.Shape);
        Assert.Equal(dtype.ElementSize(), scalar.Data.Length); // A scalar has one element.
        Assert.False(file.TryGet("missing", out _));
        Assert.Throws<KeyNotFoundException>(() => file["missing"]);
    }

    [Fact]
    public void Serialize_GivesTheBytesWriteWrites_AndParseReadsThem()
    {
        var random = new Random(7);
        var tensors = new[]
        {
            RandomTensor(random, "b", SafeTensorDType.F16, [4, 3]),
            RandomTensor(random, "a", SafeTensorDType.I8, [5]),
        };
        string path = PathOf("x.safetensors");

        SafeTensors.Write(path, tensors);
        byte[] bytes = SafeTensors.Serialize(tensors);

        Assert.Equal(File.ReadAllBytes(path), bytes);
        var parsed = SafeTensors.Parse(bytes, "x");
        Assert.Equal(["b", "a"], parsed.Tensors.Select(t => t.Name));
        Assert.Empty(parsed.Metadata);
        AssertSameTensor(tensors[1], parsed["a"]);
    }

    [Fact]
    public void WriteThenRead_NoTensors()
    {
        string path = PathOf("empty.safetensors");
        SafeTensors.Write(path, []);
        var file = SafeTensors.Read(path);
        Assert.Empty(file.Tensors);
        Assert.Empty(file.Metadata);
    }

    [Theory]
    [InlineData("a")]
    [InlineData("ab")]
    [InlineData("abc")]
    [InlineData("abcd")]
    [InlineData("abcde")]
    [InlineData("abcdef")]
    [InlineData("abcdefg")]
    [InlineData("abcdefgh")]
    public void Write_PadsHeaderWithSpacesToAMultipleOf8(string name)
    {
        byte[] bytes = SafeTensors.Serialize([new SafeTensorEntry(name, SafeTensorDType.U8, [3], new byte[] { 1, 2, 3 })]);

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        Assert.Equal(8 + (long)headerLength + 3, bytes.Length);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.StartsWith("{", header, StringComparison.Ordinal);
        string padding = header[(header.LastIndexOf('}') + 1)..];
        Assert.True(padding.Length < 8);
        Assert.All(padding, c => Assert.Equal(' ', c));
        Assert.Equal(new byte[] { 1, 2, 3 }, bytes[(8 + (int)headerLength)..]);
    }

    // ------------------------------------------------------------ atomic write

    [Fact]
    public void Write_ReplacesTheTargetAndLeavesNoTempFiles()
    {
        string path = PathOf("model.safetensors");
        var random = new Random(3);
        SafeTensors.Write(path, [RandomTensor(random, "old", SafeTensorDType.F32, [8])]);
        var replacement = RandomTensor(random, "new", SafeTensorDType.BF16, [2, 2]);

        SafeTensors.Write(path, [replacement]);

        Assert.Equal([path], Directory.GetFiles(_dir));
        AssertSameTensor(replacement, Assert.Single(SafeTensors.Read(path).Tensors));
    }

    public static TheoryData<string, SafeTensorEntry[]> InvalidWrites() => new()
    {
        { "duplicate name", [new("w", SafeTensorDType.U8, [1], new byte[1]), new("w", SafeTensorDType.U8, [1], new byte[1])] },
        { "data too short", [new("w", SafeTensorDType.F32, [5, 6], new byte[100])] },
        { "data too long", [new("w", SafeTensorDType.U8, [], new byte[2])] },
        { "negative dimension", [new("w", SafeTensorDType.U8, [-1], Array.Empty<byte>())] },
        { "empty name", [new("", SafeTensorDType.U8, [1], new byte[1])] },
        { "reserved name", [new("__metadata__", SafeTensorDType.U8, [1], new byte[1])] },
        { "lone surrogate", [new("w\ud800", SafeTensorDType.U8, [1], new byte[1])] },
        { "undefined dtype", [new("w", (SafeTensorDType)99, [1], new byte[1])] },
        { "overflowing shape", [new("w", SafeTensorDType.F64, [long.MaxValue / 4], Array.Empty<byte>())] },
    };

    [Theory]
    [MemberData(nameof(InvalidWrites))]
    public void Write_InvalidEntry_ThrowsAndLeavesThePreviousFileUntouched(string why, SafeTensorEntry[] tensors)
    {
        string path = PathOf("model.safetensors");
        SafeTensors.Write(path, [new SafeTensorEntry("kept", SafeTensorDType.I16, [2], new byte[] { 1, 2, 3, 4 })]);
        byte[] before = File.ReadAllBytes(path);

        var error = Assert.Throws<ArgumentException>(() => SafeTensors.Write(path, tensors));

        Assert.Equal("tensors", error.ParamName);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
        Assert.False(string.IsNullOrEmpty(why));
    }

    [Fact]
    public void Write_InvalidMetadata_Throws()
    {
        var tensor = new SafeTensorEntry("w", SafeTensorDType.U8, [1], new byte[1]);
        var error = Assert.Throws<ArgumentException>(
            () => SafeTensors.Serialize([tensor], new Dictionary<string, string> { ["k"] = null! }));
        Assert.Equal("metadata", error.ParamName);
    }

    [Fact]
    public void Write_WhenTheRenameFails_DeletesTheTempFile()
    {
        // A directory in the target's place lets the temp file be written but not renamed over it.
        string path = PathOf("model.safetensors");
        Directory.CreateDirectory(path);

        var error = Record.Exception(() => SafeTensors.Write(path, [new SafeTensorEntry("w", SafeTensorDType.U8, [1], new byte[1])]));

        Assert.NotNull(error);
        Assert.Empty(Directory.GetFiles(_dir));
        Assert.True(Directory.Exists(path));
    }

    // ------------------------------------------------------------ valid hand-made files

    [Fact]
    public void Read_AcceptsUnpaddedOutOfOrderHeaderWithScalarAndZeroSizeTensors()
    {
        const string header = """
            {"b":{"dtype":"I16","shape":[2],"data_offsets":[1,5]},
             "empty2":{"shape":[3,0],"dtype":"F64","data_offsets":[5,5]},
             "__metadata__":{"k":"v"},
             "s":{"data_offsets":[0,1],"dtype":"BOOL","shape":[]},
             "empty1":{"dtype":"F32","shape":[0],"data_offsets":[1,1]}}
            """;
        byte[] data = [1, 2, 3, 4, 5];

        var file = SafeTensors.Parse(FileOf(Encoding.UTF8.GetBytes(header), data), SourceName);

        Assert.Equal(["s", "empty1", "b", "empty2"], file.Tensors.Select(t => t.Name));
        Assert.Equal(new byte[] { 1 }, file["s"].Data.ToArray());
        Assert.Equal(new byte[] { 2, 3, 4, 5 }, file["b"].Data.ToArray());
        Assert.Equal(0, file["empty2"].Data.Length);
        Assert.Equal("v", file.Metadata["k"]);
    }

    // ------------------------------------------------------------ malformed files

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void Read_RejectsFileShorterThanTheLengthPrefix(int length)
    {
        AssertRejected(new byte[length], SafeTensorsProblem.FileTooShort);
    }

    [Fact]
    public void Read_RejectsAOneTerabyteHeaderLengthWithoutAllocating()
    {
        byte[] file = ClaimingHeaderLength(1UL << 40, "{}");
        long before = GC.GetAllocatedBytesForCurrentThread();

        var error = AssertRejected(file, SafeTensorsProblem.HeaderTooLarge);

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Contains("1099511627776", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_RejectsHeaderLengthAboveTheCallersLimit()
    {
        AssertRejected(FileOf("{}      "), SafeTensorsProblem.HeaderTooLarge, maxHeaderBytes: 4);
    }

    [Theory]
    [InlineData(1UL << 40)]
    [InlineData((ulong)long.MaxValue)]
    [InlineData(3UL)] // One more than the two bytes that follow.
    public void Read_RejectsHeaderLengthBeyondTheFileWithoutAllocating(ulong claimed)
    {
        byte[] file = ClaimingHeaderLength(claimed, "{}");
        long before = GC.GetAllocatedBytesForCurrentThread();

        AssertRejected(file, SafeTensorsProblem.HeaderExceedsFile, maxHeaderBytes: long.MaxValue);

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    [Fact]
    public void Read_RejectsHeaderThatIsNotUtf8()
    {
        byte[] header = [.. "{\"a"u8, 0xFF, .. "\":{}}"u8];
        AssertRejected(FileOf(header, []), SafeTensorsProblem.HeaderNotUtf8);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"a\" 1}")]
    [InlineData("{\"__metadata__\":{},}")]
    [InlineData("{/* comment */}")]
    [InlineData("{}{}")]
    [InlineData("{}\0")]
    [InlineData("{\"a\\ud800\":{}}")] // A lone surrogate cannot become a name.
    public void Read_RejectsHeaderThatIsNotJson(string header)
    {
        AssertRejected(FileOf(header), SafeTensorsProblem.HeaderNotJson);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"x\"")]
    [InlineData("null")]
    [InlineData(" {}")] // The spec requires the header to begin with '{'.
    public void Read_RejectsHeaderThatIsNotAnObject(string header)
    {
        AssertRejected(FileOf(header), SafeTensorsProblem.HeaderNotObject);
    }

    [Theory]
    [InlineData("{}\n")]
    [InlineData("{}  \t")]
    public void Read_RejectsPaddingOtherThanSpaces(string header)
    {
        AssertRejected(FileOf(header), SafeTensorsProblem.HeaderBadPadding);
    }

    [Theory]
    [InlineData("w")]
    [InlineData("\\u0077")] // The same name, escaped.
    public void Read_RejectsDuplicateTensorName(string secondSpelling)
    {
        string header = HeaderOf(("w", Entry("U8", "[1]", "[0,1]")), (secondSpelling, Entry("U8", "[1]", "[1,2]")));
        AssertRejected(FileOf(header, 2), SafeTensorsProblem.DuplicateTensorName, "w");
    }

    [Theory]
    [InlineData("[0, 1]")]
    [InlineData("\"U8\"")]
    [InlineData("null")]
    public void Read_RejectsEntryThatIsNotAnObject(string entry)
    {
        AssertRejected(FileOf(OneTensor(entry)), SafeTensorsProblem.EntryNotObject, "w");
    }

    [Theory]
    [InlineData("""{"shape":[1],"data_offsets":[0,1]}""", "dtype")]
    [InlineData("""{"dtype":"U8","data_offsets":[0,1]}""", "shape")]
    [InlineData("""{"dtype":"U8","shape":[1]}""", "data_offsets")]
    public void Read_RejectsEntryMissingAField(string entry, string missing)
    {
        var error = AssertRejected(FileOf(OneTensor(entry), 1), SafeTensorsProblem.MissingField, "w");
        Assert.Contains(missing, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"dtype":4,"shape":[1],"data_offsets":[0,1]}""")]
    [InlineData("""{"dtype":["U8"],"shape":[1],"data_offsets":[0,1]}""")]
    [InlineData("""{"dtype":"U8","shape":1,"data_offsets":[0,1]}""")]
    [InlineData("""{"dtype":"U8","shape":{},"data_offsets":[0,1]}""")]
    [InlineData("""{"dtype":"U8","shape":[1],"data_offsets":"0-1"}""")]
    [InlineData("""{"dtype":"U8","shape":[1],"data_offsets":null}""")]
    public void Read_RejectsFieldOfTheWrongType(string entry)
    {
        AssertRejected(FileOf(OneTensor(entry), 1), SafeTensorsProblem.WrongFieldType, "w");
    }

    [Fact]
    public void Read_RejectsUnknownField()
    {
        var error = AssertRejected(
            FileOf("""{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"strides":[1]}}""", 1),
            SafeTensorsProblem.UnknownField, "w");
        Assert.Contains("strides", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_RejectsRepeatedField()
    {
        AssertRejected(
            FileOf("""{"w":{"dtype":"U8","shape":[1],"dtype":"I8","data_offsets":[0,1]}}""", 1),
            SafeTensorsProblem.DuplicateField, "w");
    }

    [Theory]
    [InlineData("F128")]
    [InlineData("f32")]
    [InlineData("")]
    public void Read_RejectsUnknownDType(string dtype)
    {
        AssertRejected(
            FileOf(OneTensor(Entry(dtype, "[1]", "[0,1]")), 1),
            SafeTensorsProblem.UnknownDType, "w");
    }

    [Theory]
    [InlineData("[-1]")]
    [InlineData("[2, 1.5]")]
    [InlineData("[1.0]")]
    [InlineData("[1e2]")]
    [InlineData("[\"2\"]")]
    [InlineData("[null]")]
    [InlineData("[[1]]")]
    [InlineData("[99999999999999999999]")]
    public void Read_RejectsShapeDimensionThatIsNotANonNegativeInteger(string shape)
    {
        AssertRejected(
            FileOf(OneTensor(Entry("U8", shape, "[0,0]"))),
            SafeTensorsProblem.InvalidShape, "w");
    }

    [Theory]
    [InlineData("U8", "[4611686018427387904, 4]")] // The element count overflows.
    [InlineData("F64", "[4611686018427387904]")] // The byte count overflows.
    public void Read_RejectsShapeWhoseSizeOverflows(string dtype, string shape)
    {
        AssertRejected(
            FileOf(OneTensor(Entry(dtype, shape, "[0,0]"))),
            SafeTensorsProblem.ShapeTooLarge, "w");
    }

    [Theory]
    [InlineData("[0]")]
    [InlineData("[]")]
    [InlineData("[0, 1, 1]")]
    [InlineData("[-1, 0]")]
    [InlineData("[0.5, 1]")]
    [InlineData("[\"0\", 1]")]
    [InlineData("[1, 0]")]
    public void Read_RejectsOffsetsThatAreNotAnOrderedPairOfNonNegativeIntegers(string offsets)
    {
        AssertRejected(
            FileOf(OneTensor(Entry("U8", "[1]", offsets)), 1),
            SafeTensorsProblem.InvalidOffsets, "w");
    }

    [Fact]
    public void Read_RejectsOffsetsBeyondTheDataBufferWithoutAllocating()
    {
        byte[] file = FileOf("""{"w":{"dtype":"U8","shape":[1000000000000],"data_offsets":[0,1000000000000]}}""", 10);
        long before = GC.GetAllocatedBytesForCurrentThread();

        AssertRejected(file, SafeTensorsProblem.OffsetsBeyondData, "w");

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    [Fact]
    public void Read_RejectsByteSizeThatDisagreesWithDTypeAndShape()
    {
        byte[] file = FileOf("""{"layers.0.q_proj.weight":{"dtype":"F32","shape":[5,6],"data_offsets":[0,100]}}""", 100);

        var error = AssertRejected(file, SafeTensorsProblem.SizeMismatch, "layers.0.q_proj.weight");

        Assert.Equal(
            "model.safetensors: tensor \"layers.0.q_proj.weight\": data_offsets [0, 100] give 100 bytes but F32 × [5, 6] needs 120",
            error.Message);
    }

    [Theory]
    [InlineData("[2,4]", "[4,6]", "a")] // The first tensor must start at 0.
    [InlineData("[0,2]", "[3,5]", "b")]
    public void Read_RejectsGapBetweenTensors(string a, string b, string blamed)
    {
        string header = HeaderOf(("a", Entry("U8", "[2]", a)), ("b", Entry("U8", "[2]", b)));
        AssertRejected(FileOf(header, 6), SafeTensorsProblem.Gap, blamed);
    }

    [Theory]
    [InlineData("[0,4]", "[2,6]")]
    [InlineData("[0,4]", "[0,4]")]
    public void Read_RejectsOverlappingTensors(string a, string b)
    {
        string header = HeaderOf(("a", Entry("U8", "[4]", a)), ("b", Entry("U8", "[4]", b)));
        var error = AssertRejected(FileOf(header, 6), SafeTensorsProblem.Overlap, "b");
        Assert.Contains("\"a\"", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{}""", 1)]
    [InlineData("""{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}""", 3)]
    public void Read_RejectsBytesAfterTheLastTensor(string header, int dataLength)
    {
        AssertRejected(FileOf(header, dataLength), SafeTensorsProblem.TrailingBytes);
    }

    [Theory]
    [InlineData("""{"__metadata__":["a"]}""")]
    [InlineData("""{"__metadata__":null}""")]
    [InlineData("""{"__metadata__":"a"}""")]
    [InlineData("""{"__metadata__":{"k":1}}""")]
    [InlineData("""{"__metadata__":{"k":null}}""")]
    [InlineData("""{"__metadata__":{"k":{"nested":"v"}}}""")]
    [InlineData("""{"__metadata__":{"k":"a","k":"b"}}""")]
    [InlineData("""{"__metadata__":{},"__metadata__":{}}""")]
    public void Read_RejectsMetadataThatIsNotAnObjectOfStrings(string header)
    {
        AssertRejected(FileOf(header), SafeTensorsProblem.InvalidMetadata);
    }
}
