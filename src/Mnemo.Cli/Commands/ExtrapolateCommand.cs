using System.CommandLine;
using System.Globalization;
using Mnemo.Experiments;
using Mnemo.Reporting;
using Mnemo.Runtime;
using Mnemo.Sweeps;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo extrapolate`: train at length L on MQAR and passkey retrieval, test at L, 2L and 4L.</summary>
static class ExtrapolateCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick")
        {
            Description = "Tiny models and a few steps: checks the plumbing in seconds, measures nothing",
        };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Output folder (a sweep folder: results.jsonl, runs/, report/, plus results.json and extrapolation.png). " +
                "Default: runs/extrapolate (runs/extrapolate-quick with --quick; -xF-F-… appended with --factors)",
        };
        var threads = SweepOptions.Threads();
        var factors = new Option<int[]>("--factors")
        {
            Description = "Evaluation lengths as multiples of L, e.g. 1 2 4 8 16. Default: 1 2 4",
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("extrapolate",
            "Train equal-size Titans (LMM) and Gated DeltaNet models on MQAR and passkey retrieval at length L, test them at L, 2L and " +
            "4L; print the accuracy per length and write results.json, extrapolation.png and the sweep report. Runs the bundled " +
            "sweep extrapolate (extrapolate-quick with --quick): resumable, and several processes may share the work.")
        {
            quick, output, threads, factors,
        };
        command.SetAction(async (parse, cancel) =>
        {
            await Task.Yield(); // let System.CommandLine's Ctrl+C handler wait on this task (see TrainCommand)
            return CliErrors.Run(parse, () =>
            {
                bool isQuick = parse.GetValue(quick);
                var f = parse.GetValue(factors) is { Length: > 0 } given ? given : null;
                var sweep = Extrapolation.Sweep(isQuick, f);
                // Other factors are another sweep (other final evaluations): its own folder, not a clash with the default's.
                string outDir = parse.GetValue(output) ?? Path.Combine("runs", (isQuick ? "extrapolate-quick" : "extrapolate") +
                    (f is null ? "" : "-x" + string.Join("-", f)));
                TorchRuntime.Initialise(parse.GetValue(threads));
                var runs = sweep.Runs();
                var first = runs[0].Config;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"length extrapolation (bundled sweep {sweep.Name}): " +
                    $"{string.Join(", ", runs.Select(r => r.Cell["model"]).Distinct())} at d_model {first.Model.DModel}, " +
                    $"{first.Model.NumLayers} layers, {first.Model.NumHeads} heads; train at L = {LengthGrid.TrainLength(sweep)} on " +
                    $"{string.Join(" and ", runs.Select(r => r.Cell["task"]).Distinct())}, test at " +
                    $"{string.Join(", ", LengthGrid.EvalLengths(sweep))}; learning rates " +
                    $"{string.Join(", ", sweep.LearningRates.Select(SweepConfig.LrText))}, up to {first.Training.Steps} steps each; " +
                    $"output {outDir} (the same as `mnemo sweep -c {sweep.Name}`{(f is null ? "" : " with the factors above")})"));
                return SweepOptions.RunStudy(Extrapolation.Run, sweep, outDir, cancel, parse.GetValue(threads), cells =>
                {
                    Table(cells, LengthGrid.TrainLength(sweep));
                    return $"{Path.Combine(outDir, Extrapolation.ResultsFile)}, {Extrapolation.PlotFile}";
                });
            });
        });
        return command;
    }

    static void Table(IReadOnlyList<ExtrapolationCell> cells, int trainLength)
    {
        Report.WideWhenRedirected();
        string P(double d) => d.ToString("P1", CultureInfo.InvariantCulture);
        var table = new Table().Title($"trained at L = {trainLength}; MQAR: per-query accuracy; passkey: " +
            $"exact match (per-digit accuracy)");
        table.AddColumns("task", "model");
        foreach (int l in cells.SelectMany(c => c.Lengths.Select(l => l.SeqLen)).Distinct().Order())
            table.AddColumn($"L={l} ({l / trainLength}×)");
        table.AddColumns("best lr", "params", "steps", "seconds");
        foreach (var c in cells)
            table.AddRow([c.Task, c.Model,
                .. c.Lengths.Select(l => c.Task == "passkey" ? $"{P(l.ExactMatch)} ({P(l.Accuracy)})" : P(l.Accuracy)),
                c.BestLr.ToString("G3", CultureInfo.InvariantCulture), c.Parameters.ToString("N0", CultureInfo.InvariantCulture),
                c.Steps.ToString(CultureInfo.InvariantCulture), c.Seconds.ToString("F0", CultureInfo.InvariantCulture)]);
        AnsiConsole.Write(table);
    }
}
