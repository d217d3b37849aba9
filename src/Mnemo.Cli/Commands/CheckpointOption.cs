using System.CommandLine;

namespace Mnemo.Cli.Commands;

/// <summary>The --checkpoint option of the commands that read a trained model.</summary>
static class CheckpointOption
{
    /// <param name="needs">what the command needs of the model or does with it, appended to the description</param>
    public static Option<string> Create(string? needs = null) => new("--checkpoint")
    {
        Description = "A checkpoint folder, or a run folder (its newest checkpoint is used)" + (needs is null ? "" : "; " + needs),
        Required = true,
    };
}
