using System.CommandLine;
using System.Globalization;
using Mnemo.Experiments;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo extrapolate`: train at length L on MQAR and passkey retrieval, test at L, 2L and 4L.</summary>
public static class ExtrapolateCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick")
        {
            Description = "Tiny models and a few steps: checks the plumbing in seconds, measures nothing",
        };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Output folder. Default: runs/extrapolate (runs/extrapolate-quick with --quick)",
        };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = all cores)" };
        var factors = new Option<int[]>("--factors")
        {
            Description = "Evaluation lengths as multiples of L, e.g. 1 2 4 8 16. Default: 1 2 4",
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("extrapolate",
            "Train equal-size Titans (LMM) and Gated DeltaNet models on MQAR and passkey retrieval at length L, test them at L, 2L and " +
            "4L; print the accuracy per length and write results.json and extrapolation.png.")
        {
            quick, output, threads, factors,
        };
        command.SetAction(async (parse, cancel) =>
        {
            await Task.Yield(); // let System.CommandLine's Ctrl+C handler wait on this task (see TrainCommand)
            return CliErrors.Run(parse, () =>
            {
                var settings = parse.GetValue(quick) ? ExtrapolationSettings.Quick : ExtrapolationSettings.Default;
                if (parse.GetValue(factors) is { Length: > 0 } f) settings = settings with { EvalFactors = f };
                string outDir = parse.GetValue(output) ?? Path.Combine("runs", settings.Name == "quick" ? "extrapolate-quick"
                    : "extrapolate");
                TorchRuntime.Initialise(parse.GetValue(threads));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"length extrapolation ({settings.Name}): {string.Join(", ", settings.Mixers)} at d_model {settings.DModel}, " +
                    $"{settings.NumLayers} layers, {settings.NumHeads} heads; train at L = {settings.TrainLength} on " +
                    $"{string.Join(" and ", settings.Tasks)}, test at {string.Join(", ", settings.EvalLengths)}; learning rates " +
                    $"{string.Join(", ", settings.LearningRates.Select(l => l.ToString("G3", CultureInfo.InvariantCulture)))}, up to " +
                    $"{settings.Steps} steps each; output {outDir}"));
                IReadOnlyList<ExtrapolationCell> cells;
                try
                {
                    cells = Extrapolation.Run(settings, outDir, (config, _) => new RunLineObserver(config.Description), Console.WriteLine,
                        cancel);
                }
                catch (OperationCanceledException e)
                {
                    Console.Error.WriteLine(e.Message);
                    return 130;
                }
                Table(cells, settings);
                Console.WriteLine($"wrote {Path.Combine(outDir, Extrapolation.ResultsFile)} and {Extrapolation.PlotFile}");
                return 0;
            });
        });
        return command;
    }

    static void Table(IReadOnlyList<ExtrapolationCell> cells, ExtrapolationSettings settings)
    {
        Report.WideWhenRedirected();
        string P(double d) => d.ToString("P1", CultureInfo.InvariantCulture);
        var table = new Table().Title($"trained at L = {settings.TrainLength}; MQAR: per-query accuracy; passkey: " +
            $"exact match (per-digit accuracy)");
        table.AddColumns("task", "model");
        foreach (var (l, f) in settings.EvalLengths.Zip(settings.EvalFactors)) table.AddColumn($"L={l} ({f}×)");
        table.AddColumns("best lr", "params", "steps", "seconds");
        foreach (var c in cells)
            table.AddRow([c.Task, c.Model,
                .. c.Lengths.Select(l => c.Task == "passkey" ? $"{P(l.ExactMatch)} ({P(l.Accuracy)})" : P(l.Accuracy)),
                c.BestLr.ToString("G3", CultureInfo.InvariantCulture), c.Parameters.ToString("N0", CultureInfo.InvariantCulture),
                c.Steps.ToString(CultureInfo.InvariantCulture), c.Seconds.ToString("F0", CultureInfo.InvariantCulture)]);
        AnsiConsole.Write(table);
    }
}
