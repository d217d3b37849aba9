using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Runtime;
using Mnemo.Tasks;
using Spectre.Console;
using static Mnemo.Cli.Commands.OptionValues;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo timescales`: leaky RNNs with trainable τ on N-parity / N-DMS under the two curricula.</summary>
static class TimescalesCommand
{
    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "parity or dms", DefaultValueFactory = _ => "parity" };
        var curricula = new Option<string[]>("--curricula")
        {
            Description = "Curricula: single, multi. Default: both", AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int[]>("--seeds") { Description = "Seeds. Default: 1 2 3", AllowMultipleArgumentsPerToken = true };
        var d = new TimescalesConfig();
        var units = new Option<int>("--units") { Description = "Neurons of the RNN (the paper: 500)", DefaultValueFactory = _ => d.Units };
        var batch = new Option<int>("--batch") { Description = "Streams per step (the paper: 256)", DefaultValueFactory = _ => d.Batch };
        var steps = new Option<int>("--steps")
        {
            Description = "Training steps in all: the fixed budget", DefaultValueFactory = _ => d.Steps,
        };
        var epoch = new Option<int>("--epoch-steps")
        {
            Description = "Steps between tests of whether N is solved (the paper: 600)", DefaultValueFactory = _ => d.EpochSteps,
        };
        var maxN = new Option<int>("--max-n") { Description = "Heads: N = 2 … this", DefaultValueFactory = _ => d.MaxN };
        var robustness = new Option<int>("--robustness-n")
        {
            Description = "Measure ablation and noise on head N (0 = each run's largest solved N)",
        };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = all cores)" };
        var outDir = new Option<string?>("--out", "-o")
        {
            Description = "Write timescales.json and the τ plot (tau.png) into this folder",
        };
        var command = new Command("timescales",
            "Emergent timescales (docs/timescales.md): a leaky RNN with a trainable timescale τ per neuron learns N-parity or " +
            "N-DMS under the single-head curriculum (one N at a time, moving up when solved) and the multi-head one (a head for " +
            "every N so far, trained together), within a fixed step budget. Prints the largest N solved, the steps per N, the " +
            "learned τ, every head's final accuracy, and accuracy with neurons silenced or noise added.")
        {
            task, curricula, seeds, units, batch, steps, epoch, maxN, robustness, threads, outDir,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var kind = parse.GetValue(task) switch
            {
                "parity" => BitTaskKind.Parity,
                "dms" => BitTaskKind.Dms,
                var other => throw new MnemoException($"--task: unknown task \"{other}\"; allowed: parity, dms"),
            };
            var chosen = (parse.GetValue(curricula) is { Length: > 0 } cs ? cs : ["single", "multi"]).Select(name => name switch
            {
                "single" => Curriculum.Single,
                "multi" => Curriculum.Multi,
                _ => throw new MnemoException($"--curricula: unknown curriculum \"{name}\"; allowed: single, multi"),
            }).ToArray();
            var c = new TimescalesConfig
            {
                Task = kind, Units = parse.GetValue(units), Batch = parse.GetValue(batch), Steps = parse.GetValue(steps),
                EpochSteps = parse.GetValue(epoch), MaxN = parse.GetValue(maxN), RobustnessN = parse.GetValue(robustness),
            };
            c.Validate();
            int[] seedList = parse.GetValue(seeds) is { Length: > 0 } s ? s : [1, 2, 3];
            TorchRuntime.Initialise(parse.GetValue(threads));
            var runs = new List<TimescalesRun>();
            foreach (var curriculum in chosen)
                foreach (int seed in seedList)
                {
                    var run = Timescales.Run(curriculum, seed, c, Console.WriteLine);
                    Console.WriteLine($"{run.Curriculum} seed {seed}: largest N {run.LargestN} in {run.Seconds:F0} s");
                    runs.Add(run);
                }
            Report.WideWhenRedirected();
            var table = new Table().AddColumns("curriculum", "seed", "largest N", "steps to N", "τ median (max)", "heads 2…N at the end",
                "robustness on N", "ablate 10%", "noise σ 0.1");
            foreach (var r in runs)
                table.AddRow(r.Curriculum, $"{r.Seed}", $"{r.LargestN}", r.SolvedAt.Length == 0 ? "–" : $"{r.SolvedAt[^1]}",
                    string.Create(CultureInfo.InvariantCulture, $"{Median(r.Tau):F2} ({r.Tau.Max():F1})"),
                    r.FinalAccuracy.Length == 0 ? "–" : Percent(r.FinalAccuracy.Average()),
                    r.Perturbations.Length == 0 ? "–" : $"{r.Perturbations[0].N} ({Find(r, "none", 0)})", Find(r, "ablate", 0.1),
                    Find(r, "noise", 0.1));
            AnsiConsole.Write(table);
            if (parse.GetValue(outDir) is { } dir)
            {
                Directory.CreateDirectory(dir);
                TimescalesPlot.Tau(runs, Path.Combine(dir, "tau.png"));
                var json = new JsonObject
                {
                    ["config"] = JsonSerializer.SerializeToNode(c, ConfigBinder.WriteOptions),
                    ["runs"] = JsonSerializer.SerializeToNode(runs, ConfigBinder.WriteOptions),
                };
                JsonOutput.Write(Path.Combine(dir, "timescales.json"), json);
            }
            return 0;
        }));
        return command;
    }

    static string Find(TimescalesRun r, string kind, double amount) =>
        r.Perturbations.FirstOrDefault(p => p.Kind == kind && p.Amount == amount) is { } p ? Percent(p.Accuracy) : "–";

    static double Median(float[] values) => Statistics.Median([.. values.Select(x => (double)x)]);
}
