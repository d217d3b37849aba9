using System.Buffers.Binary;
using System.Text;
using Mnemo.IO;
using Mnemo.Memory.Matrix;
using Mnemo.Models;
using Mnemo.Tests.Training;
using Mnemo.Tools;
using Mnemo.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Mnemo.Tests.Faults;

/// <summary>
/// Fault injection: seeded mutations of valid safetensors files, by class, fed to every reader that takes a file from
/// a user — the kernel command's input and a model's weights. Each must end in one clear error (a MnemoException
/// whose message is one line) and write nothing; an exception of any other type, or a hang, is a defect.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class SafeTensorsMutationTests(ITestOutputHelper output)
{
    const int PerClass = 40;

    public static readonly string[] Classes =
        ["truncated", "header_length", "bad_json", "dtype", "offsets", "shape", "non_finite", "duplicate", "non_utf8", "nesting"];

    /// <summary>One mutation of <paramref name="file"/> (8-byte little-endian header length, JSON header, data).</summary>
    static byte[] Mutate(byte[] file, string kind, Random rng)
    {
        long n = BinaryPrimitives.ReadInt64LittleEndian(file);
        string header = Encoding.UTF8.GetString(file, 8, (int)n);
        byte[] data = file[(8 + (int)n)..];
        byte[] With(string h, byte[]? body = null)
        {
            var hb = Encoding.UTF8.GetBytes(h);
            var result = new byte[8 + hb.Length + (body ?? data).Length];
            BinaryPrimitives.WriteInt64LittleEndian(result, hb.Length);
            hb.CopyTo(result, 8);
            (body ?? data).CopyTo(result, 8 + hb.Length);
            return result;
        }
        string ReplaceOne(string pattern, Func<string, string> change)
        {
            var matches = System.Text.RegularExpressions.Regex.Matches(header, pattern);
            if (matches.Count == 0) return header;
            var m = matches[rng.Next(matches.Count)];
            return header[..m.Index] + change(m.Value) + header[(m.Index + m.Length)..];
        }
        switch (kind)
        {
            case "truncated":
                return file[..rng.Next(0, file.Length)];
            case "header_length":
                var lie = (byte[])file.Clone();
                long[] lies =
                [
                    n + 1 + rng.Next(1000), Math.Max(0, n - 1 - rng.Next((int)n)), long.MaxValue - rng.Next(1000),
                    -1 - rng.Next(1000), file.Length,
                ];
                BinaryPrimitives.WriteInt64LittleEndian(lie, lies[rng.Next(lies.Length)]);
                return lie;
            case "bad_json":
                var chars = header.ToCharArray();
                chars[rng.Next(chars.Length)] = "{}[],:\"x0 \\"[rng.Next(11)];
                return With(new string(chars));
            case "dtype":
                return With(ReplaceOne("\"dtype\":\"[A-Z0-9_]+\"",
                    _ => $"\"dtype\":\"{new[] { "F33", "I32", "BOOL", "F16", "", "f64", "F8_E4M3", "U64" }[rng.Next(8)]}\""));
            case "offsets":
                return With(ReplaceOne("\"data_offsets\":\\[[0-9]+,[0-9]+\\]", _ =>
                {
                    long a = rng.Next(-5, data.Length + 50), b = rng.Next(-5, data.Length + 50);
                    return rng.Next(3) == 0
                        ? $"\"data_offsets\":[{b},{a}]"
                        : $"\"data_offsets\":[{a},{(rng.Next(2) == 0 ? b : long.MaxValue)}]";
                }));
            case "shape":
                long[] dims = [0, 1, 3, -2, 1L << 40, 7];
                return With(ReplaceOne("\"shape\":\\[[0-9,]*\\]", _ =>
                    $"\"shape\":[{string.Join(",", Enumerable.Range(0, rng.Next(0, 6)).Select(_ => dims[rng.Next(dims.Length)]))}]"));
            case "non_finite":
                var poisoned = (byte[])data.Clone();
                for (int i = 0; i + 8 <= poisoned.Length && i < 64 * 8; i += 8)
                {
                    double bad = rng.Next(2) == 0 ? double.NaN : double.NegativeInfinity;
                    if (rng.Next(4) == 0) BinaryPrimitives.WriteDoubleLittleEndian(poisoned.AsSpan(i), bad);
                }
                return With(header, poisoned);
            case "duplicate":
                int open = header.IndexOf('{') + 1;
                int close = header.IndexOf('}', header.IndexOf("data_offsets", StringComparison.Ordinal)) + 1;
                return With(header[..open] + header[open..close] + "," + header[open..]);
            case "non_utf8":
                var raw = (byte[])file.Clone();
                raw[8 + rng.Next((int)n)] = (byte)(0xC0 + rng.Next(0x40));
                return raw;
            case "nesting":
                int depth = 1000 + rng.Next(100_000);
                return With("{\"__metadata__\":{\"x\":\"y\"},\"deep\":" + new string('[', depth) + new string(']', depth) + "}");
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    /// <summary>Runs <paramref name="read"/> on every mutation; returns (clear errors, harmless) per class.</summary>
    Dictionary<string, (int Errors, int Harmless)> Campaign(byte[] valid, Action<string, string> read, int seed, int perClass = PerClass)
    {
        var counts = new Dictionary<string, (int, int)>();
        using var dir = new Tmp.Dir();
        foreach (var kind in Classes)
        {
            var rng = new Random(1000 * seed + Array.IndexOf(Classes, kind));     // string hash codes vary per process
            int errors = 0, harmless = 0;
            for (int i = 0; i < perClass; i++)
            {
                string input = dir[$"{kind}-{i}.safetensors"], outputPath = dir[$"{kind}-{i}.out.safetensors"];
                File.WriteAllBytes(input, Mutate(valid, kind, rng));
                try
                {
                    read(input, outputPath);
                    harmless++;
                }
                catch (MnemoException e)
                {
                    Assert.False(string.IsNullOrWhiteSpace(e.Message), $"{kind} {i}: empty message");
                    Assert.DoesNotContain('\n', e.Message);
                    Assert.False(File.Exists(outputPath), $"{kind} {i}: wrote {outputPath} after an error");
                    errors++;
                }
                catch (Exception e)
                {
                    Assert.Fail($"{kind} {i}: {e.GetType().Name} instead of a clear error: {e.Message}");
                }
            }
            counts[kind] = (errors, harmless);
        }
        foreach (var (kind, (errors, harmless)) in counts) output.WriteLine($"{kind}: {errors} clear errors, {harmless} harmless");
        return counts;
    }

    [Fact]
    public void Every_mutated_kernel_input_is_one_clear_error_and_writes_nothing()
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var gen = new Generator(11);
        var x = new Dictionary<string, Tensor>
        {
            ["q"] = randn([1, 9, 2, 4], ScalarType.Float64, generator: gen),
            ["k"] = nn.functional.normalize(randn([1, 9, 2, 4], ScalarType.Float64, generator: gen), p: 2, dim: -1),
            ["v"] = randn([1, 9, 2, 3], ScalarType.Float64, generator: gen),
            ["g"] = -rand([1, 9, 2], ScalarType.Float64, generator: gen),
            ["beta"] = rand([1, 9, 2], ScalarType.Float64, generator: gen),
        };
        SafeTensors.Write(dir["valid.safetensors"], x.Select(kv => TensorIO.ToEntry(kv.Key, kv.Value)));
        var counts = Campaign(File.ReadAllBytes(dir["valid.safetensors"]),
            (input, outputPath) => KernelFile.Run(input, outputPath, new KernelRunOptions(KernelRule.GatedDelta)), seed: 1);
        // Mutations that must always be refused (others may leave a file that still reads as something valid).
        foreach (var kind in new[] { "truncated", "non_finite", "duplicate", "nesting" })
            Assert.True(counts[kind].Errors == PerClass, $"{kind}: {counts[kind].Harmless} accepted");
    }

    [Fact]
    public void Every_mutated_optimizer_state_stops_the_resume_with_one_clear_error()
    {
        using var runs = new Tmp.Dir();
        string pristine = runs["pristine"];
        new Trainer(TrainerTests.Tiny(4), pristine).Run(resume: false);
        string Optimizer(string run) => Path.Combine(Checkpoint.List(run).Single(), Checkpoint.OptimizerFile);
        int n = 0;
        const int perClass = 20;                                                  // each case sets up a resume: fewer
        var counts = Campaign(File.ReadAllBytes(Optimizer(pristine)), (input, _) =>
        {
            string run = runs[$"run-{n++}"];
            foreach (var file in Directory.GetFiles(pristine, "*", SearchOption.AllDirectories))
            {
                string target = Path.Combine(run, Path.GetRelativePath(pristine, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
            File.Copy(input, Optimizer(run), overwrite: true);
            new Trainer(TrainerTests.Tiny(5), run).Run(resume: true);
        }, seed: 3, perClass);
        foreach (var kind in new[] { "truncated", "duplicate", "nesting", "non_finite" })
            Assert.True(counts[kind].Errors == perClass, $"{kind}: {counts[kind].Harmless} accepted");
    }

    [Fact]
    public void Every_mutated_weights_file_is_one_clear_error()
    {
        using var dir = new Tmp.Dir();
        var model = new LanguageModel(TrainerTests.Tiny().ResolvedModel);
        TensorIO.SaveStateDict(model, dir["model.safetensors"]);
        var counts = Campaign(File.ReadAllBytes(dir["model.safetensors"]),
            (input, _) => TensorIO.LoadStateDict(new LanguageModel(TrainerTests.Tiny().ResolvedModel), input), seed: 2);
        foreach (var kind in new[] { "truncated", "duplicate", "nesting", "dtype", "shape" })
            Assert.True(counts[kind].Errors == PerClass, $"{kind}: {counts[kind].Harmless} accepted");
    }
}
