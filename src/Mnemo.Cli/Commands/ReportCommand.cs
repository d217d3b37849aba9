using System.CommandLine;
using Mnemo.Reporting;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo report RESULTS`: the HTML + Markdown report of a sweep, from its results alone.</summary>
static class ReportCommand
{
    public static Command Create()
    {
        var results = new Argument<string>("results") { Description = "A sweep folder (holding results.jsonl) or a results.jsonl file" };
        var output = new Option<string?>("--out", "-o") { Description = "Report folder. Default: report/ beside the results file" };
        var command = new Command("report",
            "Write a sweep's report without re-running anything: index.html (self-contained, opens offline), report.md (Markdown tables) " +
            "and PNG plots — score against context length, against state size, needle depth × length heatmaps, loss curves. Works on " +
            "a partly finished sweep too.")
        {
            results, output,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            Console.WriteLine($"wrote {SweepReport.Write(parse.GetValue(results)!, parse.GetValue(output))}");
            return 0;
        }));
        return command;
    }
}
