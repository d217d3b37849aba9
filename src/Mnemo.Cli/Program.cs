using System.CommandLine;
using Mnemo.Cli.Commands;

namespace Mnemo.Cli;

public static class Program
{
    // Async invocation: only that path turns Ctrl+C / SIGTERM into the cancellation token the commands watch.
    public static Task<int> Main(string[] args)
    {
        var parse = Build().Parse(args);
        // No command at all: show what there is (System.CommandLine would report a missing command).
        if (args.Length == 0) parse = Build().Parse(["--help"]);
        else if (parse.Errors.Count > 0) return Task.FromResult(CliErrors.ParseFailed(parse));
        return parse.InvokeAsync(new InvocationConfiguration
        {
            // Ctrl+C cancels the running command, which finishes its step and saves a checkpoint; give it time to.
            ProcessTerminationTimeout = TimeSpan.FromSeconds(60),
        });
    }

    public static RootCommand Build()
    {
        var root = new RootCommand("Mnemo: sequence models with memory — train, " +
            "evaluate and inspect recall models and memory kernels on the CPU.");
        root.Options.Add(CliErrors.Verbose);
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(KernelCommand.Create());
        root.Subcommands.Add(ListCommand.Create());
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(ExtrapolateCommand.Create());
        root.Subcommands.Add(SweepCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(CollapseCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(ProbeCommand.Create());
        root.Subcommands.Add(HeadsCommand.Create());
        root.Subcommands.Add(EpisodicCommand.Create());
        root.Subcommands.Add(StreamNeedleCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(InteropCommands.Import());
        root.Subcommands.Add(InteropCommands.Export());
        root.Subcommands.Add(ForecastCommand.Create());
        root.Subcommands.Add(WriteCommand.Create());
        root.Subcommands.Add(WriteCommand.CreateRecall());
        root.Subcommands.Add(TimescalesCommand.Create());
        root.Subcommands.Add(GridForecastCommand.Create());
        root.Subcommands.Add(SparseyCommand.Create());
        root.Subcommands.Add(RecodingCommand.Create());
        root.Subcommands.Add(ClassifyCommand.Create());
        root.Subcommands.Add(SealCommand.Create());
        root.Subcommands.Add(DialogCommand.Create());
        root.Subcommands.Add(RepeatedDataCommand.Create());
        root.Subcommands.Add(FewShotCommand.Create());
        root.Subcommands.Add(AffectCommand.Create());
        root.Subcommands.Add(DanceCommand.Create());
        return root;
    }
}
