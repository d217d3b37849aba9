using System.Diagnostics;
using System.Globalization;
using Mnemo.IO;
using static TorchSharp.torch;

namespace Mnemo.Tools;

/// <summary>
/// The plumbing `mnemo kernel` shares between the matrix rules (<see cref="KernelFile"/>) and the deep rules
/// (<see cref="DeepKernelFile"/>): the input/output paths, checks on the file's entries before any tensor is
/// made, errors prefixed with the file's name, a timed compute, dtype checks and the atomic write.
/// </summary>
static class KernelFileIO
{
    /// <summary>Checks the paths, reads the input, runs <paramref name="run"/> (given the file and its name) and
    /// writes the outputs it names with the metadata atomically; nothing is written when anything fails.</summary>
    public static T RunFile<T>(string inputPath, string outputPath, Func<SafeTensorsFile, string, T> run,
        Func<T, IEnumerable<SafeTensorEntry>> outputs, Func<T, IReadOnlyDictionary<string, string>> metadata)
    {
        Paths.CheckReadable(inputPath, "safetensors file");
        if (string.Equals(Path.GetFullPath(inputPath), Path.GetFullPath(outputPath), StringComparison.Ordinal))
            throw new MnemoException($"{outputPath}: the output would overwrite the input; choose another output file");
        var result = run(SafeTensors.Read(inputPath), inputPath);
        SafeTensors.Write(outputPath, outputs(result), metadata(result));
        return result;
    }

    /// <summary>
    /// Checks the entries' names (<paramref name="checkNames"/>) and dtypes (F32 or F64) before any tensor is made,
    /// then gives the tensors to <paramref name="body"/> inside a dispose scope. Errors are prefixed with
    /// <paramref name="sourceName"/>.
    /// </summary>
    public static T Run<T>(SafeTensorsFile input, string sourceName, Action<IReadOnlyCollection<string>> checkNames,
        Func<IReadOnlyDictionary<string, Tensor>, T> body)
    {
        try
        {
            checkNames(input.Tensors.Select(e => e.Name).ToList());
            foreach (var e in input.Tensors)
                if (e.DType is not (SafeTensorDType.F32 or SafeTensorDType.F64))
                    throw new MnemoException($"tensor \"{e.Name}\" is {e.DType.ToSpecName()}; kernel inputs must be F32 or F64");
            using var scope = NewDisposeScope();
            return body(input.Tensors.ToDictionary(e => e.Name, TensorIO.ToTensor));
        }
        catch (MnemoException e) when (e is not SafeTensorsFormatException)
        {
            throw new MnemoException($"{sourceName}: {e.Message}", e);
        }
    }

    /// <summary>Runs <paramref name="compute"/> on the clock and converts its named outputs to file entries (not timed).</summary>
    public static (IReadOnlyList<SafeTensorEntry> Entries, double Seconds) Timed(Func<IReadOnlyList<(string Name, Tensor Value)>> compute)
    {
        var clock = Stopwatch.StartNew();
        IReadOnlyList<(string Name, Tensor Value)> outputs;
        using (Runtime.GcQuiet.Enter()) outputs = compute();                     // see GcQuiet: no GC mid-call
        double seconds = clock.Elapsed.TotalSeconds;
        return (outputs.Select(kv => TensorIO.ToEntry(kv.Name, kv.Value)).ToList(), seconds);
    }

    /// <summary>The tail of a run's summary line: what was written, where, and how long the compute took.</summary>
    public static string Wrote(IEnumerable<SafeTensorEntry> outputs, string? outputPath, double seconds) =>
        $"wrote {string.Join(", ", outputs.Select(e => e.Name))}{(outputPath is null ? "" : $" to {outputPath}")} " +
        $"in {seconds.ToString("F3", CultureInfo.InvariantCulture)} s";

    /// <summary>Unknown names are an error listing the allowed ones.</summary>
    public static void CheckKnown(IEnumerable<string> names, Func<string, bool> known, string allowed)
    {
        var unknown = names.Where(n => !known(n)).ToList();
        if (unknown.Count > 0)
            throw new MnemoException($"unknown tensor{(unknown.Count > 1 ? "s" : "")} " +
                                     $"{string.Join(", ", unknown.Select(n => $"\"{n}\""))}; allowed names: {allowed}");
    }

    /// <summary>
    /// Every input is finite, and each tensor named in <paramref name="domains"/> lies in its closed interval: a NaN
    /// or a gate outside its domain would otherwise run to an output of NaN (or nonsense) with exit 0.
    /// </summary>
    public static void CheckValues(IReadOnlyDictionary<string, Tensor> inputs,
        IReadOnlyDictionary<string, (double Lo, double Hi, string Why)> domains)
    {
        using var scope = NewDisposeScope();
        foreach (var (name, t) in inputs.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (t.numel() == 0) continue;
            if (!isfinite(t).all().item<bool>()) throw new MnemoException($"tensor \"{name}\" holds NaN or infinite values");
            if (!domains.TryGetValue(name, out var d)) continue;
            double lo = t.min().to(ScalarType.Float64).item<double>(), hi = t.max().to(ScalarType.Float64).item<double>();
            if (lo < d.Lo || hi > d.Hi)
                throw new MnemoException(string.Create(CultureInfo.InvariantCulture,
                    $"tensor \"{name}\" ranges over [{lo:G6}, {hi:G6}], outside [{d.Lo:G6}, {d.Hi:G6}] ({d.Why})"));
        }
    }

    /// <summary>Every input (checked in <paramref name="order"/>) must be F32 or F64, all the same as q.</summary>
    public static ScalarType CheckDTypes(IReadOnlyDictionary<string, Tensor> inputs, IEnumerable<string> order)
    {
        var dtype = inputs["q"].dtype;
        foreach (var name in order.Where(inputs.ContainsKey))
        {
            var t = inputs[name].dtype;
            if (t is not (ScalarType.Float32 or ScalarType.Float64))
                throw new MnemoException($"tensor \"{name}\" is {Spec(t, name)}; kernel inputs must be F32 or F64");
            if (t != dtype)
                throw new MnemoException($"tensor \"{name}\" is {Spec(t, name)} but q is {Spec(dtype, "q")}; " +
                    $"all inputs must share one dtype");
        }
        return dtype;
    }

    /// <summary>A forward-only run may not carry cotangents (names starting with "d" that the rule reads with --backward).</summary>
    public static void NoCotangentsWithoutBackward(IEnumerable<string> cotangents, bool backward)
    {
        if (backward) return;
        foreach (var cotangent in cotangents)
            throw new MnemoException($"tensor \"{cotangent}\" is only used with --backward");
    }

    public static string Spec(ScalarType t, string name)
    {
        try { return TensorIO.ToFile(t, name).ToSpecName(); }
        catch (MnemoException) { return t.ToString(); }
    }

    public static MnemoException Shape(string name, Tensor t, string expected) =>
        new($"{name} has shape [{string.Join(", ", t.shape)}], expected {expected}");

    /// <summary>Every size of q and v must be at least 1.</summary>
    public static void CheckNonEmpty(Tensor q, Tensor v)
    {
        if (q.shape.Any(d => d == 0) || v.shape.Any(d => d == 0))
            throw new MnemoException($"q has shape [{string.Join(", ", q.shape)}] and v [{string.Join(", ", v.shape)}]: " +
                $"every size must be at least 1");
    }
}
