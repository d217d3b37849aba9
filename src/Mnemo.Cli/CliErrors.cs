using System.CommandLine;
using System.CommandLine.Parsing;
using Spectre.Console;

namespace Mnemo.Cli;

/// <summary>One-line errors for bad input, details only with --verbose; exit 2 for input errors, 1 for bugs.</summary>
static class CliErrors
{
    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Show full error details (stack traces)",
        Recursive = true,
    };

    public static int Run(ParseResult parse, Func<int> action)
    {
        bool verbose = parse.GetValue(Verbose);
        try
        {
            return action();
        }
        catch (MnemoException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            if (verbose) Console.Error.WriteLine(e);
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            if (verbose) Console.Error.WriteLine(e);
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: unexpected failure: {e.GetType().Name}: " +
                $"{e.Message}{(verbose ? "" : " (run with --verbose for details)")}");
            if (verbose) Console.Error.WriteLine(e);
            return 1;
        }
    }

    /// <summary>
    /// A command line that does not parse (an unknown command or option, a missing or malformed value): one
    /// <c>error:</c> line per problem and the help command to run, exit 2 like every other input error.
    /// </summary>
    public static int ParseFailed(ParseResult parse)
    {
        // An unknown word also leaves the root without a command; the unknown word is the error to report.
        var errors = parse.Errors.Count > 1 ? parse.Errors.Where(e => e.Message != "Required command was not provided.") : parse.Errors;
        foreach (var e in errors) Console.Error.WriteLine($"error: {e.Message}");
        var names = new List<string>();
        for (SymbolResult? r = parse.CommandResult; r is CommandResult c && c.Command is not RootCommand; r = c.Parent)
            names.Insert(0, c.Command.Name);
        Console.Error.WriteLine($"Run 'mnemo {string.Join(' ', names.Append("--help"))}' for usage.");
        return 2;
    }

    /// <summary>True when stdout is a terminal that can show live progress.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
}
