using System.CommandLine;
using Mnemo.Training;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

static class TrainCommand
{
    public const string DefaultPreset = "mqar-attention";

    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c")
        {
            Description = $"Config JSON file, or the name of a bundled preset (see `mnemo list`). Default: {DefaultPreset}; with " +
                $"--resume, the run's own config.json",
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override one field, e.g. --set training.lr=1e-3 (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Run folder for metrics and checkpoints. Default: runs/<config name>",
        };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its newest checkpoint" };

        var command = new Command("train", "Train a model on a task; writes metrics.jsonl and checkpoints into the run folder.")
        {
            config, set, output, resume,
        };
        command.SetAction(async (parse, cancel) =>
        {
            // Return to System.CommandLine before training starts: its Ctrl+C handler waits on the returned task,
            // and a synchronous action would leave it nothing to wait on (the process then dies mid-step).
            await Task.Yield();
            return CliErrors.Run(parse, () =>
            {
                string? configArg = parse.GetValue(config);
                string runDir = parse.GetValue(output) ?? Path.Combine("runs",
                    Path.GetFileNameWithoutExtension(configArg ?? DefaultPreset));
                bool isResume = parse.GetValue(resume);
                string[] overrides = parse.GetValue(set) ?? [];
                // A resumed run keeps the config it started with (plus any --set), unless --config is given explicitly.
                string runConfigFile = Path.Combine(runDir, Checkpoint.ConfigFile);
                if (isResume && configArg is null && !File.Exists(runConfigFile))
                    throw new MnemoException($"{runDir}: nothing to resume (no {Checkpoint.ConfigFile}); start the run without --resume");
                var runConfig = isResume && configArg is null
                    ? RunConfig.LoadSaved(runConfigFile, overrides)
                    : RunConfig.Load(configArg ?? DefaultPreset, overrides);
                return Train(runConfig, runDir, isResume, cancel);
            });
        });
        return command;
    }

    static int Train(RunConfig config, string runDir, bool resume, CancellationToken cancel)
    {
        TrainingOutcome outcome;
        if (CliErrors.Interactive)
        {
            outcome = null!;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(),
                    new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var observer = new ProgressObserver(ctx);
                    outcome = new Trainer(config, runDir, observer).Run(resume, cancel);
                });
        }
        else
        {
            outcome = new Trainer(config, runDir, new LogObserver(Console.Out)).Run(resume, cancel);
        }

        Report.EvalTable(outcome.LastEval!);
        string status = outcome.Interrupted ? "interrupted (resume with --resume)" : outcome.ReachedTarget ? "reached the target"
            : "finished";
        Console.WriteLine($"test accuracy {outcome.TestAccuracy:P2} after {outcome.Steps} steps, " +
            $"{outcome.ElapsedSeconds:F0} s of training — {status}. Run folder: {outcome.RunDir}");
        if (config.Task.DataNote() is { } note) Console.WriteLine($"note: {note}");
        return outcome.Interrupted ? 130 : 0;
    }
}
