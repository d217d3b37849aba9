using System.Text.RegularExpressions;
using Mnemo.Tests.Cli;

namespace Mnemo.Tests.Packaging;

/// <summary>
/// The two NuGet packages as a user gets them (docs/install.md): both are packed from this build into a folder feed;
/// the `mnemo` tool is installed from it into a tool path and runs `info` and a tiny `train`; a new console project
/// that references the `Mnemo` library from the feed builds and computes, its TorchSharp native library fixed by the
/// package's own build files.
/// </summary>
public class PackageTests
{
    static (int ExitCode, string Output) Run(string workDir, string file, params string[] args)
    {
        var r = CliProcess.RunProgram(workDir, file, args,
            new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" }, minutes: 5);
        return (r.ExitCode, r.Stdout + r.Stderr);
    }

    static void Ok((int ExitCode, string Output) r, string what) => Assert.True(r.ExitCode == 0, $"{what} failed:\n{r.Output}");

    [Fact]
    public void Both_packages_install_and_run_from_a_folder_feed()
    {
        using var dir = new Tmp.Dir();
        // The configuration these tests were built in (bin/<Configuration>/net10.0): pack that build, do not rebuild.
        string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        foreach (var project in new[] { "src/Mnemo/Mnemo.csproj", "src/Mnemo.Cli/Mnemo.Cli.csproj" })
        {
            var pack = Run(Repository.Root, "dotnet", "pack", project, "-c", configuration, "--no-build", "-o", dir["feed"]);
            Ok(pack, $"dotnet pack {project}");
        }
        string version = Regex.Match(Path.GetFileName(Directory.GetFiles(dir["feed"], "Mnemo.Cli.*.nupkg").Single()),
            @"^Mnemo\.Cli\.(.+)\.nupkg$").Groups[1].Value;
        Assert.True(File.Exists(dir[$"feed/Mnemo.{version}.nupkg"]), "the library package is missing");

        // The tool, installed as a user would, from the feed into a tool path.
        Ok(Run(dir.Path, "dotnet", "tool", "install", "Mnemo.Cli", "--version", version, "--tool-path", dir["tools"],
            "--add-source", dir["feed"]), "dotnet tool install");
        var info = Run(dir.Path, dir["tools/mnemo"], "info");
        Ok(info, "mnemo info");
        Assert.Contains("compute     ok", info.Output);
        var train = Run(dir.Path, dir["tools/mnemo"], "train", "-c", "mqar-attention", "--set", "training.steps=2",
            "--set", "training.warmup_steps=1", "--set", "training.eval_every=2", "-o", "run");
        Ok(train, "mnemo train");
        Assert.True(Directory.Exists(dir["run/checkpoints"]), train.Output);

        // The library, referenced by a new console project from the same feed.
        Directory.CreateDirectory(dir["app"]);
        File.WriteAllText(dir["app/nuget.config"], $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="feed" value="{dir["feed"]}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(dir["app/app.csproj"], $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Mnemo" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(dir["app/Program.cs"], """
            using Mnemo.Layers;
            using Mnemo.Models;
            using static TorchSharp.torch;

            var model = new LanguageModel(new ModelConfig { Mixer = MixerKind.GatedDeltaNet, VocabSize = 256, DModel = 32 });
            Console.WriteLine($"logits [{string.Join(", ", model.forward(zeros(1, 5, dtype: int64)).shape)}]");
            """);
        var app = Run(dir["app"], "dotnet", "run");
        Ok(app, "dotnet run of a project referencing Mnemo");
        Assert.Contains("logits [1, 5, 256]", app.Output);
    }
}
