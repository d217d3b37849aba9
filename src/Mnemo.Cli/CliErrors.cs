using System.CommandLine;
using Spectre.Console;

namespace Mnemo.Cli;

/// <summary>One-line errors for bad input, details only with --verbose; exit 2 for input errors, 1 for bugs.</summary>
public static class CliErrors
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

    /// <summary>True when stdout is a terminal that can show live progress.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
}
