using System.CommandLine;
using Mnemo.Cli.Commands;

namespace Mnemo.Cli;

public static class Program
{
    public static int Main(string[] args) => Build().Parse(args).Invoke();

    public static RootCommand Build()
    {
        var root = new RootCommand("Mnemo: sequence models with memory — train, evaluate and inspect recall models on the CPU.");
        root.Options.Add(CliErrors.Verbose);
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(ListCommand.Create());
        root.Subcommands.Add(InfoCommand.Create());
        return root;
    }
}
