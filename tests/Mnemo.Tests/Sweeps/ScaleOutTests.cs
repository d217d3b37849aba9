using System.Text.Json.Nodes;
using Mnemo.Sweeps;
using Mnemo.Tests.Cli;

namespace Mnemo.Tests.Sweeps;

/// <summary>
/// The scale-out examples (docs/scale-out.md) run as they are written: the Slurm job script itself, and the Kubernetes
/// Job's container command, each as two local worker processes sharing one results folder, as two array tasks or two
/// pods would. Together they must do every run of the sweep exactly once.
/// </summary>
public class ScaleOutTests
{
    static string Example(params string[] path) => Path.Combine([Repository.Root, "deploy", .. path]);

    static void AssertEveryRunOnce(string outDir, IEnumerable<(int ExitCode, string Stdout, string Stderr)> workers)
    {
        Assert.All(workers, w => Assert.True(w.ExitCode == 0, w.Stdout + w.Stderr));
        var ids = SweepLedger.ReadResults(Path.Combine(outDir, SweepLedger.ResultsFile)).Select(l => l["id"]!.GetValue<string>()).ToList();
        Assert.Equal(8, ids.Count);
        Assert.Equal(8, ids.Distinct().Count());
    }

    [Fact]
    public async Task The_slurm_array_script_runs_as_two_workers_that_share_the_sweep()
    {
        using var dir = new Tmp.Dir();
        File.WriteAllText(dir["sweep.json"], SweepTests.TinySweep(steps: 2));
        var workers = Enumerable.Range(0, 2).Select(task => Task.Run(() =>
            CliProcess.RunProgram(dir.Path, "bash", [Example("slurm", "mnemo-sweep.sbatch")], new Dictionary<string, string>
            {
                ["MNEMO"] = $"dotnet {CliProcess.Dll}", ["SWEEP"] = dir["sweep.json"], ["RESULTS"] = dir["results"],
                ["SLURM_ARRAY_TASK_ID"] = task.ToString(System.Globalization.CultureInfo.InvariantCulture), ["SLURM_CPUS_PER_TASK"] = "1",
            }))).ToArray();
        var done = await Task.WhenAll(workers);
        AssertEveryRunOnce(dir["results"], done);
        Assert.Contains(done, w => w.Stdout.Contains($"array task 1 on {Environment.MachineName}"));
    }

    [Fact]
    public async Task The_kubernetes_jobs_container_command_runs_as_two_workers_that_share_the_sweep()
    {
        using var dir = new Tmp.Dir();
        File.WriteAllText(dir["sweep.json"], SweepTests.TinySweep(steps: 2));
        // The container's command, as written in the Job (a JSON array is a YAML flow sequence).
        string line = File.ReadLines(Example("kubernetes", "mnemo-sweep-job.yaml")).Single(l => l.TrimStart().StartsWith("command:"));
        var command = JsonNode.Parse(line[(line.IndexOf(':') + 1)..])!.AsArray().Select(n => n!.GetValue<string>()).ToArray();
        Assert.Equal(["dotnet", "/shared/mnemo/mnemo.dll", "sweep"], command[..3]);
        var args = command[2..];
        args[Array.IndexOf(args, "--config") + 1] = dir["sweep.json"];          // the volume's paths, here
        args[Array.IndexOf(args, "--out") + 1] = dir["results"];
        args[Array.IndexOf(args, "--threads") + 1] = "1";                       // two pods of 2 CPUs on a 2-core machine
        var done = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => CliProcess.Run(dir.Path, args))));
        AssertEveryRunOnce(dir["results"], done);
    }
}
