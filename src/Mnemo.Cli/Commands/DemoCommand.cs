using System.CommandLine;
using System.Globalization;
using Mnemo.Experiments;
using Mnemo.Runtime;
using Mnemo.Training;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo demo`: attention vs linear attention vs Gated DeltaNet on MQAR, with a learning-rate sweep.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var full = new Option<bool>("--full")
        {
            Description = "Run the larger Zoology-style grid (L up to 256, K up to 64, four learning rates; hours on 2 cores)",
        };
        var output = new Option<string?>("--out", "-o") { Description = "Output folder. Default: runs/demo (runs/demo-full with --full)" };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = all cores)" };
        var command = new Command("demo", "Train attention, linear attention and Gated DeltaNet on MQAR; print accuracy per (length, " +
            "pairs) and write results.json, accuracy.png and loss.png.")
        {
            full, output, threads,
        };
        command.SetAction(async (parse, cancel) =>
        {
            await Task.Yield(); // let System.CommandLine's Ctrl+C handler wait on this task (see TrainCommand)
            return CliErrors.Run(parse, () =>
            {
                var settings = parse.GetValue(full) ? DemoSettings.Full : DemoSettings.Default;
                string outDir = parse.GetValue(output) ?? Path.Combine("runs", settings.Name == "full" ? "demo-full" : "demo");
                TorchRuntime.Initialise(parse.GetValue(threads));
                Console.WriteLine($"MQAR demo ({settings.Name}): {string.Join(", ", settings.Mixers)} at d_model {settings.DModel}, " +
                    $"learning rates " +
                    $"{string.Join(", ", settings.LearningRates.Select(l => l.ToString("G3", CultureInfo.InvariantCulture)))}, up to " +
                    $"{settings.Steps} steps each; output {outDir}");
                IReadOnlyList<DemoModelResult> results;
                try
                {
                    results = MqarDemo.Run(settings, outDir, (config, runDir) => new RunLineObserver(config.Description), cancel);
                }
                catch (OperationCanceledException e)
                {
                    Console.Error.WriteLine(e.Message);
                    return 130;
                }
                Table(results, settings);
                Console.WriteLine($"wrote {Path.Combine(outDir, "results.json")}, accuracy.png, loss.png");
                return 0;
            });
        });
        return command;
    }

    static void Table(IReadOnlyList<DemoModelResult> results, DemoSettings settings)
    {
        Report.WideWhenRedirected();
        var table = new Table().Title("MQAR test accuracy (best learning rate per model)");
        table.AddColumn("model");
        foreach (var s in settings.Test) table.AddColumn($"L={s.SeqLen} K={s.NumKvPairs}");
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
