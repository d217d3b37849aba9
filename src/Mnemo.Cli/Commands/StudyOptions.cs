using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Runtime;

namespace Mnemo.Cli.Commands;

/// <summary>
/// The options every config-driven study shares (classify, seal, dialog, repeated-data): a config file, seeds, field
/// overrides, libtorch threads and an output folder; each command words their help for itself.
/// </summary>
sealed class StudyOptions
{
    public Option<string?> Config { get; }
    public Option<int[]> Seeds { get; }
    public Option<string[]> Set { get; }
    public Option<int> Threads { get; } = new("--threads")
    {
        Description = "libtorch threads (0 = training.threads, whose 0 is all cores)",
    };
    public Option<string?> Out { get; }

    /// <param name="config">what the config file holds and the default it replaces</param>
    /// <param name="seeds">what a seed draws</param>
    /// <param name="examples">"--set" examples</param>
    /// <param name="writes">what --out writes</param>
    public StudyOptions(string config, string seeds, string examples, string writes)
    {
        Config = new("--config", "-c") { Description = config };
        Seeds = new("--seeds")
        {
            Description = $"Seeds ({seeds}); medians and ranges are reported. Default: 1 2 3", AllowMultipleArgumentsPerToken = true,
        };
        Set = new("--set") { Description = $"Override a field, e.g. {examples} (repeatable)" };
        Out = new("--out", "-o") { Description = $"Write {writes} into this folder" };
    }

    /// <summary>Adds the options to <paramref name="command"/>, after its own.</summary>
    public Command AddTo(Command command)
    {
        foreach (Option option in new Option[] { Config, Seeds, Set, Threads, Out }) command.Options.Add(option);
        return command;
    }

    public int[] SeedsOf(ParseResult parse) => parse.GetValue(Seeds) is { Length: > 0 } s ? s : [1, 2, 3];

    public string[] OverridesOf(ParseResult parse) => parse.GetValue(Set) ?? [];

    /// <summary>Starts libtorch with --threads, else the config's training.threads.</summary>
    public void StartTorch(ParseResult parse, int configThreads) =>
        TorchRuntime.Initialise(parse.GetValue(Threads) is > 0 and var n ? n : configThreads);

    /// <summary>With --out: writes {"config": the config, <paramref name="key"/>: the results} as <paramref name="file"/>
    /// (see the other overload) and returns the folder; null without --out.</summary>
    public string? Write<T>(ParseResult parse, string file, string configJson, string key, T results) =>
        Write(parse, file, () => new JsonObject
        {
            ["config"] = JsonNode.Parse(configJson),
            [key] = JsonSerializer.SerializeToNode(results, ConfigBinder.WriteOptions),
        });

    /// <summary>With --out: creates the folder, writes <paramref name="json"/> as <paramref name="file"/> in it, and returns
    /// the folder for the command's other files; null without --out.</summary>
    public string? Write(ParseResult parse, string file, Func<JsonObject> json)
    {
        if (parse.GetValue(Out) is not { } dir) return null;
        Directory.CreateDirectory(dir);
        JsonOutput.Write(Path.Combine(dir, file), json());
        return dir;
    }
}
