using System.Diagnostics;
using System.Runtime.InteropServices;
using Mnemo.IO;
using Mnemo.Tests.Training;
using Mnemo.Training;

namespace Mnemo.Tests.Cli;

public class CliTests
{
    [DllImport("libc", EntryPoint = "kill")]
    static extern int Kill(int pid, int signal);

    const int SigInt = 2;

    [Fact]
    public async Task Ctrl_C_saves_a_checkpoint_and_exits_130()
    {
        using var dir = new Tmp.Dir();
        var config = TrainerTests.Tiny(steps: 100_000) with
        {
            Training = TrainerTests.Tiny().Training with { Steps = 100_000, CheckpointEvery = 25, EvalEvery = 100_000, WarmupSteps = 2 },
        };
        File.WriteAllText(dir["tiny.json"], config.ToJson());
        using var run = CliProcess.Start(dir.Path, interruptible: true, "train", "--config", "tiny.json", "--out", "run");
        run.StandardInput.Close();
        var stdout = run.StandardOutput.ReadToEndAsync();
        var stderr = run.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (Checkpoint.List(dir["run"]).Count == 0 && !run.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(20);
        Thread.Sleep(100); // land between periodic checkpoints
        Assert.Equal(0, Kill(run.Id, SigInt));
        if (!run.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            // Say where the run was (it once trained on through SIGINT: the suite ran as a background job, which ignores it).
            run.Kill(entireProcessTree: true);
            run.WaitForExit();
            Assert.Fail($"the run did not stop within a minute of SIGINT; its output:\n{await stdout}\n{await stderr}");
        }
        Assert.Equal(130, run.ExitCode);
        string output = await stdout;
        Assert.Contains("interrupted", output);
        // The checkpoint is the step the run stopped at, not just the last periodic one.
        long stoppedAt = long.Parse(System.Text.RegularExpressions.Regex.Match(output, @"after (\d+) steps").Groups[1].Value);
        var last = Checkpoint.ReadState(Checkpoint.List(dir["run"])[^1]);
        Assert.Equal(stoppedAt, last.Step);
        Assert.False(last.Finished);
    }

    [Fact]
    public void Libtorch_loads_and_computes_in_a_fresh_process()
    {
        // The build patches libLibTorchSharp.so (GLIBCXX_3.4.32 marked weak); without it this fails on Debian 12.
        var (code, stdout, stderr) = CliProcess.Run(Path.GetTempPath(), "info");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("compute     ok", stdout);
        Assert.Contains("libtorch    2.10", stdout);
        Assert.Contains("bf16        ", stdout);
        Assert.Contains("fused chunk ", stdout);
    }

    [Theory]
    [InlineData(true, true, "AMX-BF16")]
    [InlineData(false, true, "AVX512-BF16, no AMX")]
    [InlineData(false, false, "slower than fp32")]
    public void Info_says_what_the_cpu_offers_bf16(bool amx, bool avx512Bf16, string expected)
    {
        string support = Mnemo.Runtime.CpuFeatures.Bf16SupportOf(amx, avx512Bf16);
        Assert.Contains(expected, support);
        Assert.Equal(!amx, support.Contains("attention's kernel stays fp32"));
    }

    [Theory]
    [InlineData(0.51, true)]                                                // the Intel Xeon without AMX measured
    [InlineData(4.2, false)]                                                // the AMD EPYC with AVX512-BF16
    public void The_bf16_verdict_warns_when_the_measured_matmul_is_slower_than_fp32(double speedup, bool warns)
    {
        string verdict = Mnemo.Runtime.CpuFeatures.Bf16VerdictOf("AVX512-BF16, no AMX (bf16 dot products)", speedup);
        Assert.Contains($"measured {speedup:F2}× fp32", verdict);
        Assert.Equal(warns, verdict.Contains("slower than fp32"));
    }

    [Fact]
    public void Every_command_has_help()
    {
        foreach (var command in new[] { "train", "eval", "kernel", "list", "info", "demo", "extrapolate", "collapse", "generate", "bench",
            "bench kernels", "bench decode", "probe", "sweep", "report", "heads", "convert", "forecast", "episodic", "stream-needle",
            "write", "passage-recall", "timescales", "grid-forecast", "sparsey", "recoding", "classify", "seal", "dialog",
            "repeated-data", "few-shot", "affect", "dance", "import", "export" })
        {
            var (code, stdout, _) = CliProcess.Run(Path.GetTempPath(), [.. command.Split(' '), "--help"]);
            Assert.Equal(0, code);
            Assert.Contains($"mnemo {command}", stdout);
            Assert.Contains("Options:", stdout);
        }
    }

    [Fact]
    public void List_shows_models_tasks_and_presets()
    {
        var (code, stdout, _) = CliProcess.Run(Path.GetTempPath(), "list");
        Assert.Equal(0, code);
        Assert.Contains("attention", stdout);
        Assert.Contains("mqar", stdout);
        Assert.Contains("mqar-attention", stdout);
        Assert.Contains("titans_mac", stdout);
    }

    [Fact]
    public void List_fields_shows_every_task_section()
    {
        var (code, stdout, _) = CliProcess.Run(Path.GetTempPath(), "list", "--fields");
        Assert.Equal(0, code);
        // The field column wraps at the console width, so look for the task kinds and short field names.
        foreach (var field in new[] { "task.kind", "passkey", "set_disjointness", "induction_heads", "task.variant", "task.qa" })
            Assert.Contains(field, stdout);
        foreach (var preset in new[] { "set-disjointness", "induction-heads", "parity-dms", "fact-chains" })
            Assert.Contains(preset, stdout);
    }

    [Theory]
    [InlineData("{ \"training\": { \"lr\": \"fast\" } }", "training.lr")]
    [InlineData("{ \"modle\": {} }", "modle")]
    [InlineData("{ not json", "not valid JSON")]
    public void Bad_config_is_one_line_and_exit_code_2(string json, string expected)
    {
        using var dir = new Tmp.Dir();
        File.WriteAllText(dir["bad.json"], json);
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "train", "--config", "bad.json", "--out", "run");
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.StartsWith("error: ", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.False(Directory.Exists(dir["run"]));
    }

    [Theory]
    [InlineData("Unrecognized command or argument 'frobnicate'", "mnemo --help", "frobnicate")]
    [InlineData("Unrecognized command or argument '--bogus'", "mnemo train --help", "train", "--bogus")]
    [InlineData("Option '--input' is required", "mnemo kernel --help", "kernel", "--rule", "delta", "--output", "o.safetensors")]
    public void A_command_line_that_does_not_parse_is_bad_input(string error, string help, params string[] args)
    {
        var (code, stdout, stderr) = CliProcess.Run(Path.GetTempPath(), args);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);                                       // no help dump: the error, and where help is
        Assert.Equal(["error: " + error + ".", $"Run '{help}' for usage."], stderr.TrimEnd().Split('\n'));
    }

    [Theory]
    [InlineData("--with memory_tokenz: unknown field \"memory_tokenz\"", "episodic", "--checkpoint", "none", "--with", "memory_tokenz=3")]
    [InlineData("--with: field \"min_event\": 40 is longer than max_event 32", "episodic", "--checkpoint", "none", "--with",
        "min_event=40")]
    [InlineData("--models: unknown model \"lstm\"", "stream-needle", "--models", "lstm")]
    [InlineData("--steps 0: must be at least 1", "stream-needle", "--steps", "0")]
    [InlineData("--task: unknown task \"sort\"", "timescales", "--task", "sort")]
    [InlineData("--curricula: unknown curriculum \"sliding\"", "timescales", "--curricula", "sliding")]
    [InlineData("units must be at least 1, got 0", "timescales", "--units", "0")]
    [InlineData("--models: unknown model \"unet\"", "grid-forecast", "--models", "unet")]
    [InlineData("kernel must be odd and positive, got 4", "grid-forecast", "--kernel", "4")]
    [InlineData("--heads: unknown head \"tree\"", "classify", "--heads", "tree")]
    [InlineData("data.steps: 7 steps do not divide the 30 features", "classify", "--set", "data.steps=7", "--seeds", "1")]
    [InlineData("--mixers: unknown mixer \"nope\"", "seal", "--mixers", "nope")]
    [InlineData("--encoders: unknown encoder \"lf-x\"", "dialog", "--encoders", "lf-x")]
    [InlineData("the default dialog config: field \"data.plausible\": plausible + popular + the human answer (50 + 60 + 1) exceed " +
        "candidates (100)", "dialog", "--set", "data.popular=60")]
    [InlineData("the default repeated-data config: field \"repeats\": give at least one count, each ≥ 1", "repeated-data",
        "--repeats", "0")]
    [InlineData("the default few-shot config: field \"retention_exposures\": 16 is not one of exposures [1, 3]", "few-shot",
        "--exposures", "1", "3")]
    [InlineData("the default affect config: field \"model.mixer\": bc_lstm and bc_lstm_hier are bidirectional recurrent cells: " +
        "use lstm or gru, not attention", "affect", "--set", "model.mixer=attention")]
    [InlineData("the default dance config: field \"temporal_indexes\": give true, false or both", "dance", "--set",
        "temporal_indexes=[]")]
    [InlineData("active bits must be in [1, inputs / 2 = 64], got 100", "sparsey", "--active", "100")]
    [InlineData("noise: probabilities must be in [0, 1)", "recoding", "--noise", "1.5")]
    [InlineData("--steps 0: must be at least 1", "write", "--checkpoint", "none", "-o", "w", "--steps", "0")]
    [InlineData("a new run needs an opening paragraph", "write", "--checkpoint", "none", "-o", "mnemo-no-such-run")]
    [InlineData("--resume: mnemo-no-such-run/state.json does not exist", "write", "--checkpoint", "none", "-o", "mnemo-no-such-run",
        "--resume")]
    public void The_new_experiments_name_the_bad_option(string error, params string[] args)
    {
        var (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), args);
        Assert.Equal(2, code);
        Assert.StartsWith("error: " + error, stderr);
    }

    [Fact]
    public void Write_runs_the_loop_on_a_gguf_model_and_resumes_it()
    {
        using var dir = new Tmp.Dir();
        Writing.TinyGguf.Write(dir["tiny.gguf"]);
        string[] args = ["write", "--gguf", "tiny.gguf", "--context", "512", "--tokens", "8", "-o", "run", "--steps", "1"];
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, [.. args, "--opening", "A village sat by the sea."]);
        Assert.True(code == 0, stderr);
        Assert.Contains("1 steps, 1 fallbacks", stdout);
        Assert.Equal("", stderr);                                                       // llama.cpp's log is kept off the terminal
        (code, stdout, stderr) = CliProcess.Run(dir.Path, [.. args, "--resume"]);
        Assert.True(code == 0, stderr);
        Assert.Contains("2 steps", stdout);
        Assert.Equal(2, File.ReadAllText(dir["run/transcript.md"]).Split("## Step ").Length - 1);
        (code, _, stderr) = CliProcess.Run(dir.Path, [.. args, "--opening", "Again."]);
        Assert.Equal(2, code);
        Assert.Contains("already holds a run", stderr);
        (code, _, stderr) = CliProcess.Run(dir.Path, "write", "-o", "other", "--opening", "X.");
        Assert.Equal(2, code);
        Assert.Contains("give --checkpoint (a Mnemo model trained on text) or --gguf", stderr);
    }

    [Fact]
    public void Resume_of_a_folder_without_a_run_is_refused_and_creates_nothing()
    {
        using var dir = new Tmp.Dir();
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "train", "--out", "never", "--resume");
        Assert.Equal(2, code);
        Assert.StartsWith("error: never: nothing to resume", stderr);
        Assert.False(Directory.Exists(dir["never"]));
    }

    [Fact]
    public void Probe_prints_a_recall_table_and_rejects_a_bad_option_naming_it()
    {
        var (code, stdout, stderr) = CliProcess.Run(Path.GetTempPath(), "probe", "--variants", "delta_rule", "--theta", "0.5",
            "--chunk-sizes", "4", "--sequences", "8", "--filler", "4", "--threads", "1");
        Assert.True(code == 0, stderr);
        Assert.Contains("delta_rule", stdout);
        Assert.Contains("%", stdout);
        var bad = CliProcess.Run(Path.GetTempPath(), "probe", "--chunk-sizes", "0");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--chunk-sizes: 0 is not at least 1", bad.Stderr);
        Assert.Contains("unknown memory", CliProcess.Run(Path.GetTempPath(), "probe", "--variants", "nope").Stderr);
    }

    [Fact]
    public void An_imported_fla_checkpoint_generates_and_exports_and_a_folder_without_a_config_is_refused()
    {
        using var dir = new Tmp.Dir();
        string fixture = Path.Combine(Repository.Root, "tests", "Mnemo.Tests", "Fixtures", "fla", "gated-deltanet");
        Assert.Equal(0, CliProcess.Run(dir.Path, "import", fixture, "--out", "run").ExitCode);
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "generate", "--checkpoint", "run", "--prompt", "72 105", "-n", "5");
        Assert.True(code == 0, stderr);
        Assert.Matches(@"^\d+( \d+){4}\s*$", stdout);                          // five new ids
        Assert.Equal(0, CliProcess.Run(dir.Path, "export", "--checkpoint", "run", "--out", "fla").ExitCode);
        Assert.True(File.Exists(dir["fla/model.safetensors"]) && File.Exists(dir["fla/config.json"]));

        Directory.CreateDirectory(dir["empty"]);
        (code, _, stderr) = CliProcess.Run(dir.Path, "import", "empty", "--out", "run2");
        Assert.Equal(2, code);
        Assert.Contains("empty: no config.json", stderr);
        Assert.False(Directory.Exists(dir["run2"]));
        (code, _, stderr) = CliProcess.Run(dir.Path, "import", fixture, "--out", "run");
        Assert.Equal(2, code);
        Assert.Contains("--out run: the folder is not empty", stderr);
    }

    [Fact]
    public void Eval_of_a_missing_folder_is_a_clear_error()
    {
        var (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), "eval", "--checkpoint", "/nonexistent/run");
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/run: no such folder", stderr);
    }

    [Fact]
    public void Eval_of_a_corrupt_checkpoint_names_the_file_and_the_problem()
    {
        using var dir = new Tmp.Dir();
        string ckpt = dir["ckpt"];
        Directory.CreateDirectory(ckpt);
        File.WriteAllText(Path.Combine(ckpt, Checkpoint.ConfigFile), TrainerTests.Tiny().ToJson());
        File.WriteAllBytes(Path.Combine(ckpt, Checkpoint.ModelFile), [200, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        var (code, _, stderr) = CliProcess.Run(dir.Path, "eval", "--checkpoint", ckpt);
        Assert.Equal(2, code);
        Assert.Contains(Checkpoint.ModelFile, stderr);
        Assert.Contains("header", stderr);
    }

    [Fact]
    public void Unknown_option_fails_with_a_non_zero_exit()
    {
        var (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), "train", "--learning-rate", "3");
        Assert.NotEqual(0, code);
        Assert.Contains("--learning-rate", stderr);
    }

    /// <summary>
    /// SIGKILL a training process once it has written a checkpoint, resume it, and compare with an uninterrupted
    /// run of the same config: every metric line (minus wall-clock fields) must be identical, and every
    /// checkpoint left on disk must read back.
    /// </summary>
    [Fact]
    public void Killed_run_resumes_to_the_same_metrics_as_an_uninterrupted_run()
    {
        using var dir = new Tmp.Dir();
        var config = TrainerTests.Tiny(steps: 120) with
        {
            Training = TrainerTests.Tiny().Training with { Steps = 120, CheckpointEvery = 10, EvalEvery = 20, KeepCheckpoints = 3 },
        };
        File.WriteAllText(dir["tiny.json"], config.ToJson());

        var reference = CliProcess.Run(dir.Path, "train", "--config", "tiny.json", "--out", "whole");
        Assert.True(reference.ExitCode == 0, reference.Stderr);

        using (var victim = CliProcess.Start(dir.Path, "train", "--config", "tiny.json", "--out", "killed"))
        {
            victim.StandardInput.Close();
            _ = victim.StandardOutput.ReadToEndAsync();
            _ = victim.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            while (Checkpoint.List(dir["killed"]).Count < 3 && !victim.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2))
                Thread.Sleep(20);
            Assert.False(victim.HasExited, "the run finished before it could be killed; make it longer");
            victim.Kill(entireProcessTree: true); // SIGKILL: no chance to clean up
            victim.WaitForExit();
        }
        long killedAt = Checkpoint.ReadState(Checkpoint.List(dir["killed"])[^1]).Step;
        Assert.InRange(killedAt, 10, 110);
        foreach (var ckpt in Checkpoint.List(dir["killed"]))
        {
            SafeTensors.Read(Path.Combine(ckpt, Checkpoint.ModelFile));
            SafeTensors.Read(Path.Combine(ckpt, Checkpoint.OptimizerFile));
            Checkpoint.ReadState(ckpt);
        }

        var resumed = CliProcess.Run(dir.Path, "train", "--out", "killed", "--resume");
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains($"resumed from", resumed.Stdout);
        Assert.Equal(TrainerTests.Metrics(dir["whole"]), TrainerTests.Metrics(dir["killed"]));
    }
}
