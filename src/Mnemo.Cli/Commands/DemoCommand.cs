using System.CommandLine;
using System.Globalization;
using Mnemo.Experiments;
using Mnemo.Reporting;
using Mnemo.Runtime;
using Mnemo.Sweeps;
using Mnemo.Tasks;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo demo`: attention vs linear attention vs Gated DeltaNet on MQAR, with a learning-rate sweep.</summary>
static class DemoCommand
{
    public static Command Create()
    {
        var full = new Option<bool>("--full")
        {
            Description = "Run the larger Zoology-style grid (L up to 256, K up to 64, four learning rates; hours on 2 cores)",
        };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Output folder (a sweep folder: results.jsonl, runs/, report/, plus results.json and the PNGs). Default: " +
                "runs/demo (runs/demo-full with --full)",
        };
        var threads = SweepOptions.Threads();
        var command = new Command("demo", "Train attention, linear attention and Gated DeltaNet on MQAR; print accuracy per (length, " +
            "pairs) and write results.json, accuracy.png, loss.png and the sweep report. Runs the bundled sweep demo (demo-full with " +
            "--full): resumable, and several processes may share the work.")
        {
            full, output, threads,
        };
        command.SetAction(async (parse, cancel) =>
        {
            await Task.Yield(); // let System.CommandLine's Ctrl+C handler wait on this task (see TrainCommand)
            return CliErrors.Run(parse, () =>
            {
                bool isFull = parse.GetValue(full);
                var sweep = MqarDemo.Sweep(isFull);
                string outDir = parse.GetValue(output) ?? Path.Combine("runs", isFull ? "demo-full" : "demo");
                TorchRuntime.Initialise(parse.GetValue(threads));
                var runs = sweep.Runs();
                string models = string.Join(", ", runs.Select(r => r.Cell["model"]).Distinct());
                string rates = string.Join(", ", sweep.LearningRates.Select(SweepConfig.LrText));
                Console.WriteLine($"MQAR demo (bundled sweep {sweep.Name}): {models} at d_model {runs[0].Config.Model.DModel}, " +
                    $"learning rates {rates}, up to {runs[0].Config.Training.Steps} steps each; output {outDir} " +
                    $"(the same as `mnemo sweep -c {sweep.Name}`)");
                return SweepOptions.RunStudy(MqarDemo.Run, sweep, outDir, cancel, parse.GetValue(threads), results =>
                {
                    Table(results, MqarDemo.TestSlices(sweep));
                    return $"{Path.Combine(outDir, MqarDemo.ResultsFile)}, {MqarDemo.AccuracyPlotFile}, {MqarDemo.LossPlotFile}";
                });
            });
        });
        return command;
    }

    static void Table(IReadOnlyList<DemoModelResult> results, MqarSlice[] test)
    {
        Report.WideWhenRedirected();
        var table = new Table().Title("MQAR test accuracy (best learning rate per model)");
        table.AddColumn("model");
        foreach (var s in test) table.AddColumn($"L={s.SeqLen} K={s.NumKvPairs}");
        table.AddColumns("all", "best lr", "state floats/layer", "params", "steps", "seconds");
        foreach (var r in results)
            table.AddRow([r.Model, .. r.Slices.Select(s => s.Accuracy.ToString("P1", CultureInfo.InvariantCulture)),
                r.Accuracy.ToString("P1", CultureInfo.InvariantCulture), r.BestLr.ToString("G3", CultureInfo.InvariantCulture),
                r.StateFloatsPerLayer.ToString("N0", CultureInfo.InvariantCulture),
                r.Parameters.ToString("N0", CultureInfo.InvariantCulture),
                r.Steps.ToString(CultureInfo.InvariantCulture), r.Seconds.ToString("F0", CultureInfo.InvariantCulture)]);
        AnsiConsole.Write(table);
    }
}
