using System.CommandLine;
using Mnemo.Reporting;
using Mnemo.Runtime;
using Mnemo.Sweeps;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo sweep`: models × tasks × sizes × learning rates, resumable, shareable by several workers.</summary>
static class SweepCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config", "-c")
        {
            Description = $"Sweep config file, or the name of a bundled sweep ({string.Join(", ", SweepConfig.Presets())})",
            DefaultValueFactory = _ => "quick",
        };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Sweep folder (results.jsonl, runs/, report/). Default: runs/sweeps/NAME",
        };
        var threads = SweepOptions.Threads();
        var noReport = new Option<bool>("--no-report") { Description = "Do not write the report when the sweep completes" };
        var dryRun = new Option<bool>("--dry-run") { Description = "List the runs and which are done, then exit" };
        var command = new Command("sweep",
            "Train every combination of a sweep's axes (models, tasks, sizes, …) at every learning rate, one run at a time, appending " +
            "each result to results.jsonl. Stopped or killed, the same command resumes without redoing finished runs; several processes " +
            "may run the same sweep folder at once and share the work. When every run is done it writes the report (see `mnemo report`).")
        {
            config, output, threads, noReport, dryRun,
        };
        command.SetAction(async (parse, cancel) =>
        {
            await Task.Yield(); // let System.CommandLine's Ctrl+C handler wait on this task (see TrainCommand)
            return CliErrors.Run(parse, () =>
            {
                var sweep = SweepConfig.Load(parse.GetValue(config)!);
                string outDir = parse.GetValue(output) ?? Path.Combine("runs", "sweeps", sweep.Name);
                if (parse.GetValue(dryRun))
                {
                    var done = File.Exists(Path.Combine(outDir, SweepLedger.ResultsFile)) ? new SweepLedger(outDir).Finished() : [];
                    foreach (var run in sweep.Runs())
                        Console.WriteLine($"{(done.Contains(run.Id) ? "done" : "todo")}  {run.Id}");
                    return 0;
                }
                TorchRuntime.Initialise(parse.GetValue(threads));
                SweepProgress result;
                try
                {
                    result = SweepRunner.Run(sweep, outDir, run => new RunLineObserver(run.Id), Console.WriteLine, cancel,
                        parse.GetValue(threads));
                }
                catch (OperationCanceledException e)
                {
                    Console.Error.WriteLine(e.Message.StartsWith("sweep", StringComparison.Ordinal) ? e.Message
                        : "sweep interrupted; run the same command again to continue");
                    return 130;
                }
                Console.WriteLine($"this worker ran {result.Ran} runs ({result.Diverged} diverged); {result.AlreadyDone} were already " +
                    $"done; {result.Remaining} remain" +
                    (result.ClaimedElsewhere > 0 ? $", {result.ClaimedElsewhere} of them in progress in other workers" : ""));
                // The sweep is complete: the worker that sees it write the report (under the lock, so two never interleave).
                if (result.Remaining == 0 && !parse.GetValue(noReport))
                    Console.WriteLine($"report: {new SweepLedger(outDir).Locked(() => SweepReport.Write(outDir))}");
                return 0;
            });
        });
        return command;
    }
}
