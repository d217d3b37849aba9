using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Reporting;
using Mnemo.Runtime;
using Mnemo.Sweeps;
using Mnemo.Tests.Cli;
using Mnemo.Tests.Training;
using Mnemo.Training;

namespace Mnemo.Tests.Sweeps;

[Collection(TorchCollection.Name)]
public class SweepTests
{
    /// <summary>A 2 × 2 × 2 grid of tiny MQAR runs (8 runs, a second or so each).</summary>
    internal static string TinySweep(string name = "tiny", int steps = 8, string[]? finalEval = null) => new JsonObject
    {
        ["name"] = name,
        ["base"] = JsonNode.Parse(TrainerTests.Tiny(steps).ToJson()),
        ["axes"] = new JsonArray(
            new JsonObject
            {
                ["name"] = "model", ["values"] = new JsonArray(
                    new JsonObject { ["name"] = "attention", ["set"] = new JsonArray("model.mixer=attention") },
                    new JsonObject { ["name"] = "gdn", ["set"] = new JsonArray("model.mixer=gated_delta_net") })
            },
            new JsonObject
            {
                ["name"] = "d_model", ["values"] = new JsonArray(
                    new JsonObject { ["name"] = "8", ["set"] = new JsonArray("model.d_model=8") },
                    new JsonObject { ["name"] = "16", ["set"] = new JsonArray("model.d_model=16") })
            }),
        ["learning_rates"] = new JsonArray(1e-2, 3e-3),
        ["final_eval"] = finalEval is null ? new JsonArray() : new JsonArray(finalEval.Select(f => (JsonNode)f!).ToArray()),
    }.ToJsonString();

    static SweepConfig Parse(string json) => SweepConfig.Parse(json, "test.json");

    [Theory]
    [InlineData(0, 0, 2, 0, 2)]     // a lone worker takes every core
    [InlineData(0, 0, 2, 1, 1)]     // two workers on 2 cores: one thread each
    [InlineData(0, 0, 2, 5, 1)]     // never fewer than one
    [InlineData(0, 0, 8, 3, 2)]
    [InlineData(3, 0, 2, 1, 3)]     // an explicit --threads wins
    [InlineData(0, 4, 2, 1, 4)]     // then the run config's training.threads
    public void A_worker_shares_the_cores_with_the_workers_training_now(int requested, int runConfig, int cores, int others,
        int expected) =>
        Assert.Equal(expected, SweepRunner.WorkerThreads(requested, runConfig, cores, others));

    [Fact]
    public void A_worker_given_threads_sets_them_for_each_run_and_says_so()
    {
        using var dir = new Tmp.Dir();
        var sweep = Parse(TinySweep(steps: 2)) with { LearningRates = [1e-2] };
        int before = TorchSharp.torch.get_num_threads();
        var messages = new List<string>();
        try
        {
            SweepRunner.Run(sweep, dir.Path, _ => null, messages.Add, threads: 1);
            Assert.Equal(1, TorchSharp.torch.get_num_threads());
        }
        finally { TorchSharp.torch.set_num_threads(before); }
        Assert.Equal(4, messages.Count(m => m.Contains("(1 libtorch threads; 0 other runs in progress)")));
    }

    [Fact]
    public void A_sweep_expands_to_the_product_of_its_axes_and_learning_rates_in_a_fixed_order()
    {
        var runs = Parse(TinySweep()).Runs();
        Assert.Equal(8, runs.Count);
        Assert.Equal("model=attention,d_model=8,lr=0.01", runs[0].Id);
        Assert.Equal("model=gdn,d_model=16,lr=0.003", runs[^1].Id);
        Assert.Equal(8, runs.Select(r => r.Id).Distinct().Count());
        Assert.Equal(4, runs.Select(r => r.CellId).Distinct().Count());
        Assert.All(runs, r => Assert.Equal(r.Lr, r.Config.Training.Lr));
        Assert.Equal(MixerKind.GatedDeltaNet, runs[^1].Config.Model.Mixer);
        Assert.Equal(16, runs[^1].Config.Model.DModel);
    }

    [Theory]
    [InlineData("\"learning_rates\": []", "learning_rates")]
    [InlineData("\"axes\": [{\"name\": \"model\", \"values\": []}]", "values")]
    [InlineData("\"axes\": [{\"name\": \"m\", \"values\": [{\"name\": \"a b\", \"set\": []}]}]", "name")]
    [InlineData("\"axes\": [{\"name\": \"m\", \"values\": [{\"name\": \"a\", \"set\": [\"model.no_such=1\"]}]}]", "no_such")]
    [InlineData("\"axes\": [{\"name\": \"m\", \"values\": [{\"name\": \"a\", \"set\": [\"model.d_model=-3\"]}]}]", "run m=a")]
    [InlineData("\"bogus\": 1", "bogus")]
    [InlineData("\"eval_variants\": {\"variants\": []}", "eval_variants.variants")]
    [InlineData("\"eval_variants\": {\"variants\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", "\"a\" appears 2 times")]
    [InlineData("\"eval_variants\": {\"variants\": [{\"name\": \"w\", \"window\": 8, \"state_norm_cap\": 1}]}", "variants[0].window")]
    [InlineData("\"eval_variants\": {\"variants\": [{\"name\": \"f\", \"forget_scale\": 0.5}]}", "forget_scale")]
    [InlineData("\"eval_variants\": {\"variants\": [{\"name\": \"none\"}]}", "attention has no matrix memory")]
    public void Bad_sweeps_fail_before_training_naming_the_field(string field, string named)
    {
        var node = JsonNode.Parse(TinySweep())!.AsObject();
        var patch = JsonNode.Parse("{" + field + "}")!.AsObject();
        foreach (var (k, v) in patch.ToList()) { patch.Remove(k); node[k] = v; }
        var e = Assert.Throws<ConfigException>(() => Parse(node.ToJsonString()));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void Every_bundled_sweep_parses()
    {
        Assert.Contains("quick", SweepConfig.Presets());
        foreach (var name in SweepConfig.Presets())
            Assert.NotEmpty(SweepConfig.Load(name).Runs());
    }

    [Fact]
    public void The_results_file_skips_a_line_cut_short_and_an_append_after_it_starts_a_fresh_line()
    {
        using var dir = new Tmp.Dir();
        var ledger = new SweepLedger(dir.Path);
        ledger.Append(new JsonObject { ["id"] = "a" });
        File.AppendAllText(ledger.ResultsPath, "{\"id\": \"b\", \"acc"); // a kill mid-write
        Assert.Equal(["a"], ledger.Finished());
        ledger.Append(new JsonObject { ["id"] = "c" });
        Assert.Equal(["a", "c"], ledger.Finished().Order());
    }

    [Fact]
    public void A_live_claim_keeps_other_workers_off_a_run_and_a_dead_workers_claim_is_taken_over()
    {
        using var dir = new Tmp.Dir();
        var run = Parse(TinySweep()).Runs()[0];
        var ledger = new SweepLedger(dir.Path);
        string claim = Path.Combine(dir.Path, "claims", run.Folder + ".claim");

        // Claims from threads of one process: exactly one of many concurrent claimers wins.
        var workers = Enumerable.Range(0, 8).Select(_ => new SweepLedger(dir.Path)).ToArray();
        var won = new bool[workers.Length];
        Parallel.For(0, workers.Length, i => won[i] = workers[i].TryClaim(run));
        Assert.Single(won, true);
        ledger.Release(run);                                   // not this worker's claim: it stays
        Assert.True(File.Exists(claim));
        workers[Array.IndexOf(won, true)].Release(run);
        Assert.False(File.Exists(claim));

        // A claim by a process that no longer exists (on this host) is stale.
        using var gone = System.Diagnostics.Process.Start("true")!;
        gone.WaitForExit();
        File.WriteAllText(claim, $"{gone.Id} {Environment.MachineName} 0 w 2026-01-01T00:00:00Z");
        Assert.True(ledger.TryClaim(run));
        ledger.Release(run);

        // A claim by a live process (this one, another worker in it) is respected; the same pid with another start
        // time is a reused pid (e.g. after a container restart), so that claim is stale.
        long start = System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime().Ticks;
        File.WriteAllText(claim, $"{Environment.ProcessId} {Environment.MachineName} {start} other 2026-01-01T00:00:00Z");
        Assert.False(ledger.TryClaim(run));
        File.WriteAllText(claim, $"{Environment.ProcessId} {Environment.MachineName} {start - 5 * TimeSpan.TicksPerSecond} " +
            $"other 2026-01-01T00:00:00Z");
        Assert.True(ledger.TryClaim(run));
        ledger.Release(run);

        // A claim from another host stands (its processes cannot be seen from here).
        File.WriteAllText(claim, $"1 some-other-host 0 w 2026-01-01T00:00:00Z");
        Assert.False(ledger.TryClaim(run));

        // A finished run is never claimed again.
        File.Delete(claim);
        ledger.Append(new JsonObject { ["id"] = run.Id });
        Assert.False(ledger.TryClaim(run));
    }

    [Fact]
    public void An_interrupted_sweep_resumes_without_redoing_finished_runs_and_the_report_covers_every_cell()
    {
        using var dir = new Tmp.Dir();
        var sweep = Parse(TinySweep(finalEval:
            ["task.test=[{\"seq_len\":16,\"num_kv_pairs\":2,\"num_examples\":8},{\"seq_len\":48,\"num_kv_pairs\":2,\"num_examples\":8}]"]));
        using var cts = new CancellationTokenSource();
        var messages = new List<string>();
        // Cancel as the third run starts: two results are on disk, the third run stops at its first step.
        Assert.ThrowsAny<OperationCanceledException>(() => SweepRunner.Run(sweep, dir.Path, run => null, m =>
        {
            messages.Add(m);
            if (m.StartsWith("[3/8]", StringComparison.Ordinal)) cts.Cancel();
        }, cts.Token));
        var first = SweepLedger.ReadResults(Path.Combine(dir.Path, SweepLedger.ResultsFile));
        Assert.Equal(2, first.Count);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir.Path, "claims"))); // an interrupted worker releases its claim

        var progress = SweepRunner.Run(sweep, dir.Path, run => null);
        Assert.Equal((8, 2, 6), (progress.Total, progress.AlreadyDone, progress.Ran));
        var all = SweepLedger.ReadResults(Path.Combine(dir.Path, SweepLedger.ResultsFile));
        Assert.Equal(8, all.Count);
        Assert.Equal(sweep.Runs().Select(r => r.Id).Order(), all.Select(l => l["id"]!.GetValue<string>()).Order());
        Assert.Equal(first[0].ToJsonString(), all[0].ToJsonString()); // untouched, not redone
        Assert.All(all, l => Assert.Equal([16, 48], l["slices"]!.AsArray().Select(s => s!["seq_len"]!.GetValue<int>())));

        var again = SweepRunner.Run(sweep, dir.Path, run => null);
        Assert.Equal((8, 0), (again.AlreadyDone, again.Ran));

        var cells = SweepResults.Cells(all);
        Assert.Equal(4, cells.Count);
        foreach (var cell in cells)
        {
            var lines = all.Where(l => l["cell_id"]!.GetValue<string>() == cell.CellId).ToList();
            Assert.Equal(lines.Max(l => l["validation_accuracy"]!.GetValue<double>()), cell.ValidationAccuracy);
            Assert.Equal(2, cell.ValidationByLr.Count);
        }
        string index = SweepReport.Write(dir.Path);
        string html = File.ReadAllText(index);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.Contains("data:image/png;base64,", html);
        string md = File.ReadAllText(Path.Combine(Path.GetDirectoryName(index)!, "report.md"));
        foreach (var cell in cells) Assert.Contains(cell.CellId, md);
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(index)!, "length.png")));
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(index)!, "state-size.png")));
    }

    [Fact]
    public void A_needle_sweep_records_depth_bins_and_the_report_draws_a_depth_by_length_heatmap()
    {
        using var dir = new Tmp.Dir();
        var node = JsonNode.Parse(TinySweep(steps: 4, finalEval: [
            "task.test=[{\"seq_len\":48,\"num_examples\":4,\"depths\":\"even\",\"depth_bins\":3}," +
            "{\"seq_len\":96,\"num_examples\":4,\"depths\":\"even\",\"depth_bins\":3}]"]))!.AsObject();
        node["base"]!["task"] = JsonNode.Parse(
            """{"kind": "niah", "variant": 1, "train": [{"seq_len": 48, "num_examples": 16}],""" +
            """ "test": [{"seq_len": 48, "num_examples": 4, "depth_bins": 3}]}""");
        node["learning_rates"] = new JsonArray(1e-2);
        node["axes"]!.AsArray().RemoveAt(1);
        var sweep = Parse(node.ToJsonString());
        SweepRunner.Run(sweep, dir.Path, _ => null);
        var lines = SweepLedger.ReadResults(Path.Combine(dir.Path, SweepLedger.ResultsFile));
        Assert.Equal(2, lines.Count);
        Assert.All(lines, l =>
        {
            Assert.Equal("niah", l["task"]!.GetValue<string>());
            Assert.Equal("exact_match", l["headline"]!.GetValue<string>());
            var slices = l["slices"]!.AsArray();
            Assert.Equal(6, slices.Count);
            Assert.Equal(["depth 0–0.333", "depth 0.333–0.667", "depth 0.667–1"],
                slices.Take(3).Select(s => s!["bin"]!["label"]!.GetValue<string>()));
        });
        var cell = SweepResults.Cells(lines)[0];
        Assert.Equal([1 / 6.0, 0.5, 5 / 6.0], cell.Slices.Take(3).Select(s => Math.Round(s.Depth!.Value, 12)).ToArray(),
            (a, b) => Math.Abs(a - b) < 1e-9);
        string report = Path.GetDirectoryName(SweepReport.Write(dir.Path))!;
        Assert.True(File.Exists(Path.Combine(report, "depth-0.png")));
        Assert.True(File.Exists(Path.Combine(report, "depth-1.png")));
        Assert.Contains("## Score per bin", File.ReadAllText(Path.Combine(report, "report.md")));
    }

    [Fact]
    public void A_corpus_replaced_by_generated_text_is_recorded_with_the_results_and_in_the_report()
    {
        using var dir = new Tmp.Dir();
        var node = JsonNode.Parse(TinySweep(steps: 2))!.AsObject();
        node["base"]!["task"] = JsonNode.Parse(
            """{"kind": "niah", "variant": 2, "text": {"corpus": "no-such-corpus", "generated_sentences": 200},""" +
            """ "train": [{"seq_len": 48, "num_examples": 8}], "test": [{"seq_len": 48, "num_examples": 4}]}""");
        node["learning_rates"] = new JsonArray(1e-2);
        node["axes"]!.AsArray().RemoveAt(1);
        SweepRunner.Run(Parse(node.ToJsonString()), dir.Path, _ => null);
        var lines = SweepLedger.ReadResults(Path.Combine(dir.Path, SweepLedger.ResultsFile));
        Assert.All(lines, l => Assert.Contains("\"no-such-corpus\" is not set up", l["data_note"]!.GetValue<string>()));
        string report = File.ReadAllText(Path.Combine(Path.GetDirectoryName(SweepReport.Write(dir.Path))!, "report.md"));
        Assert.Contains("**Data:** corpus \"no-such-corpus\" is not set up", report);
        Assert.Null(new Mnemo.Text.TextConfig().FallbackNote());                           // generated text is what it names
    }

    [Fact]
    public void A_changed_run_config_under_the_same_id_is_refused_and_a_grown_sweep_is_not()
    {
        using var dir = new Tmp.Dir();
        var one = Parse(TinySweep(steps: 2));
        var small = one with { LearningRates = [1e-2], Axes = [one.Axes[0] with { Values = [one.Axes[0].Values[0]] }] };
        SweepRunner.Run(small, dir.Path, _ => null);
        // Same ids, different base (more steps): results and checkpoints in the folder belong to the old config.
        var changed = small with { Base = small.Base with { Training = small.Base.Training with { Steps = 3 } } };
        var e = Assert.Throws<MnemoException>(() => SweepRunner.Run(changed, dir.Path, _ => null));
        Assert.Contains("has a different config", e.Message);
        // The same sweep grown by a learning rate keeps its finished run and adds one.
        var grown = SweepRunner.Run(small with { LearningRates = [1e-2, 3e-3] }, dir.Path, _ => null);
        Assert.Equal((2, 1, 1), (grown.Total, grown.AlreadyDone, grown.Ran));
    }

    static JsonObject SeedLine(string rung, string seed, double lr, double? accuracy, long steps, bool reached = false) => new()
    {
        ["cell"] = new JsonObject { ["seed"] = seed, ["rung"] = rung },
        ["lr"] = lr,
        ["headline"] = "accuracy",
        ["status"] = accuracy is null ? "diverged" : "ok",
        ["validation_accuracy"] = accuracy ?? 0,
        [accuracy is null ? "diverged_at_step" : "steps"] = steps,
        ["reached_target"] = reached,
    };

    [Fact]
    public void Over_seeds_the_learning_rate_is_chosen_by_the_median_and_a_diverged_run_scores_zero()
    {
        var lines = new List<JsonObject>
        {
            // lr 1e-2 has the best single run (0.99) but the worse median (0.2); lr 3e-3 wins on the median (0.8).
            SeedLine("a", "1", 1e-2, 0.99, 700, reached: true), SeedLine("a", "2", 1e-2, 0.2, 1000), SeedLine("a", "3", 1e-2, null, 129),
            SeedLine("a", "1", 3e-3, 0.8, 1000), SeedLine("a", "2", 3e-3, 0.7, 1000), SeedLine("a", "3", 3e-3, 0.9, 1000),
            SeedLine("b", "1", 1e-2, 0.995, 400, reached: true), SeedLine("b", "2", 1e-2, 0.991, 900, reached: true),
            SeedLine("b", "3", 1e-2, 0.5, 1000),
        };
        var groups = SeedSummary.Of(lines)!;
        Assert.Equal(["rung=a", "rung=b"], groups.Select(g => g.GroupId));
        var a = groups[0];
        Assert.Equal(3e-3, a.BestLr);
        Assert.Equal((0.8, 0.7, 0.9), (a.Median, a.Min, a.Max));
        Assert.Equal(0.2, a.MedianByLr[1e-2]);                      // 0.99, 0.2 and the diverged run's 0
        Assert.Empty(a.StepsToTarget);
        var b = groups[1];
        Assert.Equal((0.991, 0.5), (b.Median, b.Min));
        Assert.Equal([400L, 900L], b.StepsToTarget);
        Assert.Null(SeedSummary.Of([.. lines.Select(l => { var c = (JsonObject)l.DeepClone(); c["cell"]!.AsObject()
            .Remove("seed"); return c; })]));
        Assert.Equal(2.5, Statistics.Median([4, 1, 3, 2]));
    }

    [Fact]
    public void A_sweep_with_a_seed_axis_reports_each_group_over_its_seeds_with_learning_curves()
    {
        using var dir = new Tmp.Dir();
        var json = JsonNode.Parse(TinySweep(steps: 6))!.AsObject();
        json["axes"] = new JsonArray(
            new JsonObject
            {
                ["name"] = "seed", ["values"] = new JsonArray(
                    new JsonObject { ["name"] = "1", ["set"] = new JsonArray("training.seed=1") },
                    new JsonObject { ["name"] = "2", ["set"] = new JsonArray("training.seed=2") })
            },
            new JsonObject
            {
                ["name"] = "model", ["values"] = new JsonArray(
                    new JsonObject { ["name"] = "gdn", ["set"] = new JsonArray("model.mixer=gated_delta_net") })
            });
        json["learning_rates"] = new JsonArray(1e-2);
        var sweep = Parse(json.ToJsonString());
        SweepRunner.Run(sweep, dir.Path, run => null);
        string index = SweepReport.Write(dir.Path);
        string folder = Path.GetDirectoryName(index)!, md = File.ReadAllText(Path.Combine(folder, "report.md"));
        Assert.Contains("## Over seeds", md);
        Assert.Contains("| gdn | 0.01 | 2 |", md);
        Assert.True(File.Exists(Path.Combine(folder, "seed-curves.png")));
    }

    [Fact]
    public void Learning_rates_that_name_the_same_run_are_refused()
    {
        var node = JsonNode.Parse(TinySweep())!.AsObject();
        node["learning_rates"] = new JsonArray(2.1544e-3, 2.15e-3);
        Assert.Contains("lr=0.00215", Assert.Throws<ConfigException>(() => Parse(node.ToJsonString())).Message);
    }

    [Fact]
    public void A_folder_holding_another_sweep_is_refused()
    {
        using var dir = new Tmp.Dir();
        var one = Parse(TinySweep(steps: 2));
        var node = JsonNode.Parse(TinySweep(steps: 2))!.AsObject();
        node["learning_rates"] = new JsonArray(1e-4);
        SweepRunner.Run(one with { LearningRates = [1e-2], Axes = [one.Axes[0] with { Values = [one.Axes[0].Values[0]] }] }, dir.Path,
            _ => null);
        var e = Assert.Throws<MnemoException>(() => SweepRunner.Run(Parse(node.ToJsonString()), dir.Path, _ => null));
        Assert.Contains("holds run model=attention,lr=0.01, which this config of sweep \"tiny\" does not have", e.Message);
    }

    [Fact]
    public async Task A_killed_sweep_process_resumes_and_two_workers_share_a_sweep_without_doing_a_run_twice()
    {
        using var dir = new Tmp.Dir();
        string config = dir["sweep.json"], outDir = dir["out"];
        File.WriteAllText(config, TinySweep(steps: 30));
        string results = Path.Combine(outDir, SweepLedger.ResultsFile);

        // Kill -9 a worker once it has finished a run and is inside the next one.
        using (var p = CliProcess.Start(dir.Path, "sweep", "--config", config, "--out", outDir, "--threads", "1", "--no-report"))
        {
            p.StandardInput.Close();
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (SweepLedger.ReadResults(results).Count < 1 && DateTime.UtcNow < deadline) Thread.Sleep(50);
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        int before = SweepLedger.ReadResults(results).Count;
        Assert.InRange(before, 1, 7);

        // Two workers resume the same folder at once: together they finish, each run exactly once.
        var workers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
            CliProcess.Run(dir.Path, "sweep", "--config", config, "--out", outDir, "--threads", "1"))).ToArray();
        var done = await Task.WhenAll(workers);
        Assert.All(done, w => Assert.True(w.ExitCode == 0, w.Stdout + w.Stderr));
        var ids = SweepLedger.ReadResults(results).Select(l => l["id"]!.GetValue<string>()).ToList();
        Assert.Equal(8, ids.Count);
        Assert.Equal(8, ids.Distinct().Count());
        Assert.Contains(done, w => w.Stdout.Contains("report:"));
    }

    [Fact]
    public void Report_of_a_missing_folder_is_one_clear_error()
    {
        var (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), "report", "/no/such/sweep");
        Assert.Equal(2, code);
        Assert.Contains("no sweep results at /no/such/sweep", stderr);
    }
}
