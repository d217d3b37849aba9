using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo probe`: what a bare deep memory stores in context with fixed gates (<see cref="BareMemoryRecall"/>).</summary>
static class ProbeCommand
{
    public static Command Create()
    {
        var variants = new Option<string[]>("--variants")
        {
            Description = $"Memories to probe: {string.Join(", ", BareMemoryVariant.All.Select(v => v.Name))}. Default: all",
            AllowMultipleArgumentsPerToken = true,
        };
        var thetas = new Option<double[]>("--theta")
        {
            Description = "Inner learning rates θ of the pair writes. Default: 0.05 0.15 0.3 0.5",
            AllowMultipleArgumentsPerToken = true,
        };
        var chunks = new Option<int[]>("--chunk-sizes")
        {
            Description = "Memory chunk sizes (gradients at the chunk-start weights). Default: 1 16",
            AllowMultipleArgumentsPerToken = true,
        };
        var pairs = new Option<int?>("--pairs") { Description = "Key-value pairs written first (default 8)" };
        var filler = new Option<int?>("--filler")
        {
            Description = "Random pairs written after them, at θ × --filler-theta-ratio (default 40)",
        };
        var fillerRatio = new Option<double?>("--filler-theta-ratio")
        {
            Description = "Learning rate of the filler writes relative to θ (default 0.1)",
        };
        var valueStd = new Option<double?>("--value-std")
        {
            Description = "Standard deviation of the values (default 1; a fresh model's values are ~0.1)",
        };
        var dim = new Option<int?>("--dim") { Description = "Key and value width (default 32); hidden width 4× that" };
        var sequences = new Option<int?>("--sequences") { Description = "Independent sequences averaged over (default 256)" };
        var seed = new Option<int?>("--seed") { Description = "Seed of keys, values and initial weights (default 7)" };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = all cores)" };
        var json = new Option<string?>("--json") { Description = "Also write every number to this JSON file" };
        var command = new Command("probe",
            "Probe a bare deep memory, no model around it: write random (unit key, value) pairs at a fixed inner learning rate θ, then " +
            "filler pairs at a fraction of it, and count the pairs whose read is nearest (cosine) to their own value. Compares the delta " +
            "rule, a 2-layer MLP memory with plain and normalised steps, with the residual LayerNorm, and Moneta's and Memora's " +
            "objectives and retentions; prints a table (seconds).")
        {
            variants, thetas, chunks, pairs, filler, fillerRatio, valueStd, dim, sequences, seed, threads, json,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var s = new BareMemorySettings();
            if (parse.GetValue(variants) is { Length: > 0 } names)
                s = s with { Variants = names.Select(Variant).ToArray() };
            if (parse.GetValue(thetas) is { Length: > 0 } th)
                s = s with { Thetas = Check("--theta", th, x => x > 0 && x <= 10, "in (0, 10]") };
            if (parse.GetValue(chunks) is { Length: > 0 } c)
                s = s with { ChunkSizes = Check("--chunk-sizes", c, x => x >= 1, "at least 1") };
            if (parse.GetValue(pairs) is { } p) s = s with { Pairs = Check("--pairs", [p], x => x >= 2, "at least 2")[0] };
            if (parse.GetValue(filler) is { } f) s = s with { Filler = Check("--filler", [f], x => x >= 0, "at least 0")[0] };
            if (parse.GetValue(fillerRatio) is { } r)
                s = s with { FillerThetaRatio = Check("--filler-theta-ratio", [r], x => x >= 0, "at least 0")[0] };
            if (parse.GetValue(valueStd) is { } vs)
                s = s with { ValueStd = Check("--value-std", [vs], x => x > 0 && x <= 100, "in (0, 100]")[0] };
            if (parse.GetValue(dim) is { } d) s = s with { Dim = Check("--dim", [d], x => x >= 1 && x <= 1024, "in [1, 1024]")[0] };
            if (parse.GetValue(sequences) is { } n)
                s = s with { Sequences = Check("--sequences", [n], x => x >= 1 && x <= 1 << 16, "in [1, 65536]")[0] };
            if (parse.GetValue(seed) is { } sd) s = s with { Seed = sd };
            TorchRuntime.Initialise(parse.GetValue(threads));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"bare memory: {s.Pairs} pairs at θ, then {s.Filler} filler writes at {s.FillerThetaRatio}·θ; " +
                $"values N(0, {s.ValueStd}²); D = {s.Dim}, hidden {s.Expansion}·D, " +
                $"gradient descent on ‖M(k) − v‖² (or the named rule's objective), no forgetting; " +
                $"{s.Sequences} sequences, seed {s.Seed}; " +
                $"recall = read nearest (cosine) to its own value"));
            var results = BareMemoryRecall.Run(s);
            var table = new Table().AddColumns("memory", "θ", "chunk", "recall", "per pair (write order)", "rel. error", "‖W_L‖");
            foreach (var x in results)
                table.AddRow(x.Variant, x.Theta.ToString("G3", CultureInfo.InvariantCulture),
                    x.ChunkSize.ToString(CultureInfo.InvariantCulture),
                    (100 * x.Recall).ToString("F1", CultureInfo.InvariantCulture) + "%",
                    string.Join(" ", x.RecallPerPair.Select(v => (100 * v).ToString("F0", CultureInfo.InvariantCulture))),
                    x.RelativeError.ToString("G3", CultureInfo.InvariantCulture),
                    x.LastLayerNorm.ToString("G3", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            if (parse.GetValue(json) is { } path)
            {
                // A memory that diverged reads NaN: written as "NaN", not refused.
                var options = new JsonSerializerOptions(ConfigBinder.WriteOptions)
                {
                    NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
                };
                AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new { settings = s, results }, options));
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        }));
        return command;
    }

    static T[] Check<T>(string option, T[] values, Func<T, bool> ok, string range)
    {
        foreach (var v in values)
            if (!ok(v)) throw new MnemoException(string.Create(CultureInfo.InvariantCulture, $"{option}: {v} is not {range}"));
        return values;
    }

    static BareMemoryVariant Variant(string name)
    {
        var known = BareMemoryVariant.All.Select(v => v.Name).ToList();
        int i = Names.Find(known, name);
        return i >= 0 ? BareMemoryVariant.All[i] : throw Names.Unknown("memory", name, known);
    }
}
