using System.Diagnostics;
using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Tests.Cli;
using Mnemo.Tests.Training;
using Mnemo.Training;
using Xunit.Abstractions;

namespace Mnemo.Tests.Faults;

/// <summary>
/// The kill-and-resume property at random kill points (issue 13): SIGKILL a `mnemo train` process at seeded random
/// moments anywhere in its life (while the runtime starts, before or while config.json is written, mid-step, mid-
/// checkpoint, mid-metrics line, after the last step), resume it the way the README says, kill it again, and so on.
/// However often and wherever it is killed, the finished run's metrics equal an uninterrupted run's, every checkpoint
/// left on disk reads back, and a resume leaves no temp file behind.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class KillAndResumeTests(ITestOutputHelper output)
{
    const int Victims = 5;
    const int KillsPerVictim = 2;

    static RunConfig Config => TrainerTests.Tiny(steps: 160) with
    {
        Training = TrainerTests.Tiny().Training with { Steps = 160, CheckpointEvery = 5, EvalEvery = 20, KeepCheckpoints = 2 },
    };

    [Fact]
    public void Runs_killed_at_random_moments_resume_to_the_uninterrupted_result()
    {
        using var dir = new Tmp.Dir();
        File.WriteAllText(dir["tiny.json"], Config.ToJson());

        var clock = Stopwatch.StartNew();
        var reference = CliProcess.Run(dir.Path, "train", "--config", "tiny.json", "--out", "whole");
        Assert.True(reference.ExitCode == 0, reference.Stderr);
        double lifetime = clock.Elapsed.TotalSeconds;                  // process start to exit, the span kills fall in
        var expected = TrainerTests.Metrics(dir["whole"]);

        // Stratified: kill i of n falls at a random moment within the i-th n-th of the lifetime, so the seeded points
        // cover start-up, the first checkpoint and the end in every run of the test, not only on lucky seeds.
        var random = new Random(13);
        int n = Victims * KillsPerVictim;
        var moments = Enumerable.Range(0, n).Select(i => (i + random.NextDouble()) / n * lifetime)
            .OrderBy(_ => random.Next()).ToArray();
        var landed = new Dictionary<string, int>();

        for (int v = 0; v < Victims; v++)
        {
            string name = $"killed-{v}", run = dir[name];
            for (int k = 0; k < KillsPerVictim; k++)
            {
                double at = moments[v * KillsPerVictim + k];
                string phase = KillAt(dir.Path, name, TimeSpan.FromSeconds(at));
                string kind = phase.StartsWith("mid-run", StringComparison.Ordinal) ? "mid-run" : phase;
                landed[kind] = landed.GetValueOrDefault(kind) + 1;
                output.WriteLine($"{name}: kill {k + 1} at {at:F2} s of {lifetime:F2} s: {phase}");
                AssertCheckpointsReadBack(run);
                if (phase.StartsWith("finished", StringComparison.Ordinal)) break;    // nothing left to interrupt
            }
            var finish = CliProcess.Run(dir.Path, ResumeOrStart(dir.Path, name));
            Assert.True(finish.ExitCode == 0, $"{name}: {finish.Stderr}");
            Assert.Equal(expected, TrainerTests.Metrics(run));
            AssertCheckpointsReadBack(run);
            Assert.Empty(Directory.EnumerateFileSystemEntries(run, "*.tmp-*", SearchOption.AllDirectories));
        }
        output.WriteLine("kills by what the folder held: " +
            string.Join(", ", landed.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
    }

    [Fact]
    public void A_resume_removes_the_temp_files_a_killed_write_left_and_nothing_else()
    {
        using var dir = new Tmp.Dir();
        string run = dir["run"];
        new Trainer(TrainerTests.Tiny(4), run).Run(resume: false);
        string leftover = Path.Combine(run, Checkpoint.ConfigFile + ".tmp-" + Guid.NewGuid().ToString("N"));
        string users = Path.Combine(run, "notes.tmp-mine");
        File.WriteAllText(leftover, "{\"mod");                       // a config write cut short by SIGKILL
        File.WriteAllText(users, "not ours");

        new Trainer(TrainerTests.Tiny(8), run).Run(resume: true);
        Assert.False(File.Exists(leftover));
        Assert.True(File.Exists(users));
    }

    /// <summary>
    /// What a user does next, per the README: `--resume` when the folder holds a run (its config.json); otherwise
    /// `--resume` is refused, creating nothing, and the run is started again.
    /// </summary>
    static string[] ResumeOrStart(string workDir, string name)
    {
        string run = Path.Combine(workDir, name);
        if (File.Exists(Path.Combine(run, Checkpoint.ConfigFile))) return ["train", "--out", name, "--resume"];
        var refused = CliProcess.Run(workDir, "train", "--out", name, "--resume");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("nothing to resume", refused.Stderr);
        return ["train", "--config", "tiny.json", "--out", name];
    }

    /// <summary>
    /// Starts or resumes the run, SIGKILLs it after <paramref name="delay"/>, and says what the folder held when it died.
    /// </summary>
    static string KillAt(string workDir, string name, TimeSpan delay)
    {
        using var victim = CliProcess.Start(workDir, ResumeOrStart(workDir, name));
        victim.StandardInput.Close();
        _ = victim.StandardOutput.ReadToEndAsync();
        _ = victim.StandardError.ReadToEndAsync();
        if (victim.WaitForExit(delay)) return "finished before the kill";
        victim.Kill(entireProcessTree: true);                          // SIGKILL: no chance to clean up
        victim.WaitForExit();
        string run = Path.Combine(workDir, name);
        if (!File.Exists(Path.Combine(run, Checkpoint.ConfigFile))) return "no config.json yet";
        var last = Checkpoint.List(run).LastOrDefault();
        if (last is null) return "config.json, no checkpoint";
        var state = Checkpoint.ReadState(last);
        return state.Finished ? "finished, not yet exited" : $"mid-run (step {state.Step} saved)";
    }

    /// <summary>Every complete checkpoint loads; metric lines parse except, at most, one cut short at the end.</summary>
    static void AssertCheckpointsReadBack(string run)
    {
        foreach (var ckpt in Checkpoint.List(run))
        {
            SafeTensors.Read(Path.Combine(ckpt, Checkpoint.ModelFile));
            SafeTensors.Read(Path.Combine(ckpt, Checkpoint.OptimizerFile));
            Checkpoint.ReadState(ckpt);
            Checkpoint.ReadConfig(ckpt);
        }
        string metrics = Path.Combine(run, Trainer.MetricsFile);
        if (!File.Exists(metrics)) return;
        var lines = File.ReadAllLines(metrics);
        foreach (var line in lines.SkipLast(1)) Assert.NotNull(JsonNode.Parse(line));
    }
}
