using Mnemo.Tests.Cli;

namespace Mnemo.Tests.Faults;

/// <summary>
/// Fault injection for the command line: malformed commands, options and values across every command. Each must exit
/// 2 with its first stderr line starting "error:", print no stack trace, and create nothing in the working folder.
/// </summary>
public sealed class CommandLineFaultTests
{
    public static TheoryData<string> BadCommandLines => new()
    {
        "frobnicate",
        "train --bogus",
        "train --config",
        "train --config nope.json",
        "train --set training.lr=-1",
        "train --set training.lr",
        "train --set nope.x=1",
        "train --out never --resume",
        "eval",
        "eval --checkpoint missing-run",
        "kernel --rule delta",
        "kernel --rule gated-delta -i in -o out",
        "kernel --rule delta -i missing.safetensors -o out.safetensors",
        "kernel --rule delta -i . -o out.safetensors",
        "kernel --rule titans -i missing.safetensors -o out.safetensors --depth 0",
        "kernel --rule delta -i missing.safetensors -o out.safetensors --chunk-size -3",
        "generate --checkpoint missing-run --prompt 1",
        "sweep --config nope",
        "report missing-results",
        "bench kernels --dims x",
        "bench kernels --rules gated-scalar",
        "bench decode --contexts 0",
        "probe --chunk-sizes 0",
        "probe --variants nope",
        "collapse --mixers nope",
        "extrapolate --factors 0",
        "list --bogus",
    };

    [Theory]
    [MemberData(nameof(BadCommandLines))]
    public void A_bad_command_line_exits_2_with_one_error_and_creates_nothing(string commandLine)
    {
        using var dir = new Tmp.Dir();
        var (code, _, stderr) = CliProcess.Run(dir.Path, commandLine.Split(' '));
        Assert.True(code == 2, $"exit {code}: {stderr}");
        Assert.StartsWith("error: ", stderr);
        Assert.DoesNotContain("   at ", stderr);                                        // no .NET stack trace
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
