using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo sparsey`: Sparsey's sequence memory against the linear and delta matrix memories.</summary>
static class SparseyCommand
{
    public static Command Create()
    {
        var d = new SparseyStudyConfig();
        var inputs = new Option<int>("--inputs")
        {
            Description = "N, bits per item (the matrix memories are N × N)", DefaultValueFactory = _ => d.Inputs,
        };
        var active = new Option<int>("--active") { Description = "m, bits on per item", DefaultValueFactory = _ => d.Active };
        var length = new Option<int>("--length") { Description = "Items per sequence", DefaultValueFactory = _ => d.Length };
        var modules = new Option<int>("--modules")
        {
            Description = "Q, Sparsey's competitive modules", DefaultValueFactory = _ => d.Modules,
        };
        var cells = new Option<int>("--cells") { Description = "K, cells per module", DefaultValueFactory = _ => d.Cells };
        var floor = new Option<double>("--familiarity-floor")
        {
            Description = "G⁻: the familiarity at or below which Sparsey's code is random", DefaultValueFactory = _ => d.FamiliarityFloor,
        };
        var sequences = new Option<int[]>("--sequences")
        {
            Description = $"The load sweep: sequences stored. Default: {string.Join(" ", d.Sequences)}",
            AllowMultipleArgumentsPerToken = true,
        };
        var similarities = new Option<double[]>("--similarities")
        {
            Description = "The interference sweep: the share of a prototype each later item keeps. " +
                $"Default: {string.Join(" ", d.Similarities)}",
            AllowMultipleArgumentsPerToken = true,
        };
        var similar = new Option<int>("--similar-sequences")
        {
            Description = "Sequences stored in the interference sweep", DefaultValueFactory = _ => d.SimilarSequences,
        };
        var trials = new Option<int>("--trials")
        {
            Description = "Trials per point (fresh items and codes)", DefaultValueFactory = _ => d.Trials,
        };
        var seed = new Option<int>("--seed") { Description = "Seed of items and code choices", DefaultValueFactory = _ => 1 };
        var outDir = new Option<string?>("--out", "-o")
        {
            Description = "Write sparsey.json and the two sweeps' plots (sparsey-load.png, sparsey-similarity.png) into this folder",
        };
        var command = new Command("sparsey",
            "Sparsey's sequence memory (docs/sparsey.md): a macrocolumn of competitive modules stores sequences of sparse binary " +
            "items as chains of sparse distributed codes, learned in one trial with binary weights, and replays each from its " +
            "first item. Measured side by side with the linear and delta matrix memories (N × N, fp32) against the number of " +
            "items stored and against how similar the items of different sequences are.")
        {
            inputs, active, length, modules, cells, floor, sequences, similarities, similar, trials, seed, outDir,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = new SparseyStudyConfig
            {
                Inputs = parse.GetValue(inputs), Active = parse.GetValue(active), Length = parse.GetValue(length),
                Modules = parse.GetValue(modules), Cells = parse.GetValue(cells), FamiliarityFloor = parse.GetValue(floor),
                SimilarSequences = parse.GetValue(similar), Trials = parse.GetValue(trials),
                Sequences = parse.GetValue(sequences) is { Length: > 0 } s ? s : d.Sequences,
                Similarities = parse.GetValue(similarities) is { Length: > 0 } sim ? sim : d.Similarities,
            };
            c.Validate();
            TorchRuntime.Initialise(1);
            var points = SparseyCapacity.Run(c, parse.GetValue(seed), Console.WriteLine);
            Report.WideWhenRedirected();
            var memories = points.Select(p => p.Memory).Distinct().ToArray();
            var table = new Table().Title($"replay from the first item: median (lowest–highest) over {c.Trials} trials")
                .AddColumns(["sweep", "x", .. memories.Select(m => $"{m}: items exact % · bits right %"),
                    "sparsey weights set: up · across"]);
            foreach (var row in points.GroupBy(p => (p.Sweep, p.X)))
                table.AddRow([row.Key.Sweep, row.Key.Sweep == "load" ? $"{row.Key.X:F0} items" : $"{row.Key.X:F2}",
                    .. memories.Select(m => row.First(p => p.Memory == m) is var p
                        ? $"{Statistics.Spread(p.Exact.Select(x => 100 * x), "F1")} · {Statistics.Median(p.Overlap) * 100:F1}" : "–"),
                    row.FirstOrDefault(p => p.UpSet is not null) is { UpSet: { } up, AcrossSet: { } across }
                        ? $"{100 * Statistics.Median(up):F1}% · {100 * Statistics.Median(across):F1}%" : "–"]);
            AnsiConsole.Write(table);
            var bits = memories.Select(m => $"{m} {points.First(p => p.Memory == m).Bits:N0} bits");
            Console.WriteLine($"storage: {string.Join(", ", bits)}");
            if (parse.GetValue(outDir) is { } dir)
            {
                Directory.CreateDirectory(dir);
                SparseyPlot.Save(points, "load", "items stored", Path.Combine(dir, "sparsey-load.png"), logX: true);
                SparseyPlot.Save(points, "similarity", "share of a prototype kept by each later item",
                    Path.Combine(dir, "sparsey-similarity.png"), logX: false);
                var json = new JsonObject
                {
                    ["config"] = JsonSerializer.SerializeToNode(c, ConfigBinder.WriteOptions),
                    ["points"] = JsonSerializer.SerializeToNode(points, ConfigBinder.WriteOptions),
                };
                JsonOutput.Write(Path.Combine(dir, "sparsey.json"), json);
            }
            return 0;
        }));
        return command;
    }
}
