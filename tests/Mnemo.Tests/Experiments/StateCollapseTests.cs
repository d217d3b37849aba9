using System.Globalization;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.Reporting;
using Mnemo.Sweeps;
using Mnemo.Tests.Cli;

namespace Mnemo.Tests.Experiments;

[Collection(TorchCollection.Name)]
public class StateCollapseTests
{
    /// <summary>The bundled collapse-quick sweep cut down to Mamba-2, 2 steps, lengths L and 2L and one forget scale.</summary>
    static SweepConfig Tiny()
    {
        var sweep = StateCollapse.Sweep(quick: true, [1, 2]).WithBase(["training.steps=2"]);
        var model = sweep.Axes.Single(a => a.Name == "model");
        return sweep with
        {
            Axes = [model with { Values = [model.Values.Single(v => v.Name == "mamba2")] }],
            EvalVariants = sweep.EvalVariants! with
            {
                Variants = sweep.EvalVariants.Variants.Where(v => v.Name != "forget λ=4").ToArray(),
            },
        };
    }

    [Fact]
    public void Quick_run_scores_every_mitigation_at_every_length_records_norms_reports_and_resumes()
    {
        using var dir = new Tmp.Dir();
        var sweep = Tiny();
        var lines = new List<string>();
        var cells = StateCollapse.Run(sweep, dir.Path, _ => null, lines.Add)!;

        var cell = Assert.Single(cells);
        Assert.Equal(["none", "forget λ=2", "state norm τ=1×max@L", "state norm τ=0.5×max@L", "window r=32"],
            cell.Scores.Select(s => s.Mitigation));
        Assert.All(cell.Scores, s => Assert.Equal([32, 64], s.Lengths.Select(l => l.SeqLen)));
        Assert.Equal(cell.Scores.Count, lines.Count(l => l.Contains(" · ", StringComparison.Ordinal)));   // one line per mitigation
        // τ per layer is the largest norm seen at t ≤ L.
        Assert.Equal(2, cell.MaxNormAtTrainLength.Length);
        Assert.All(cell.MaxNormAtTrainLength, max => Assert.True(max > 0));
        // Traces at the longest length for the step-form mitigations (not the window), every layer.
        Assert.Equal(4 * 2, cell.Norms.Count);
        Assert.All(cell.Norms, n => Assert.Equal(64, n.Norms.Length));
        // Each cap τ = m × (largest norm at t ≤ L) bounds its trace: "state norm τ=0.5×max@L" has m = 0.5.
        var capped = cell.Norms.Where(n => n.Mitigation.StartsWith("state norm", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, capped.Count);
        foreach (var n in capped)
        {
            double margin = double.Parse(n.Mitigation["state norm τ=".Length..n.Mitigation.IndexOf('×')], CultureInfo.InvariantCulture);
            Assert.All(n.Norms, x => Assert.True(x <= margin * cell.MaxNormAtTrainLength[n.Layer] * (1 + 1e-6)));
        }
        // "none" runs the memory as trained: the same scores as the sweep's own final evaluation.
        var kept = Assert.Single(SweepResults.Cells(SweepLedger.ReadResults(Path.Combine(dir.Path, SweepLedger.ResultsFile))));
        Assert.Equal(kept.Slices.Select(s => (s.Accuracy, s.ExactMatch)),
            cell.Scores[0].Lengths.Select(l => (l.Accuracy, l.ExactMatch)));

        var json = JsonNode.Parse(File.ReadAllText(dir[StateCollapse.ResultsFile]))!;
        Assert.Equal(32, json["train_length"]!.GetValue<int>());
        Assert.Equal(32, json["window"]!.GetValue<int>());
        Assert.Equal(5, json["cells"]![0]!["scores"]!.AsArray().Count);
        Assert.Equal("none", json["cells"]![0]!["norms"]![0]!["mitigation"]!.GetValue<string>());
        Assert.True(new FileInfo(dir[StateCollapse.NormPlotFile]).Length > 1000);
        Assert.True(new FileInfo(dir[StateCollapse.AccuracyPlotFile]).Length > 1000);
        Assert.Contains("| passkey | mamba2 | window r=32 |", StateCollapse.MarkdownTable(cells, 32));

        // The sweep report shows the variants too.
        SweepReport.Write(dir.Path);
        string report = File.ReadAllText(Path.Combine(dir.Path, "report", "report.md"));
        Assert.Contains("## Score per evaluation variant", report);
        Assert.Contains("| mamba2 | state norm τ=0.5×max@L |", report);
        Assert.Contains("## Largest state norm per layer", report);
        Assert.True(File.Exists(Path.Combine(dir.Path, "report", "variants.png")));
        Assert.True(File.Exists(Path.Combine(dir.Path, "report", "state-norms.png")));

        // Finished runs are not retrained: the same weights score the same.
        var again = StateCollapse.Run(sweep, dir.Path, _ => null)!;
        Assert.Equal(cells.Single().Scores.SelectMany(s => s.Lengths), again.Single().Scores.SelectMany(s => s.Lengths));
        // Other variants are another sweep: refused in this folder before any training.
        var other = sweep with { EvalVariants = sweep.EvalVariants! with { TraceExamples = 2 } };
        Assert.Contains("different config", Assert.Throws<MnemoException>(() => StateCollapse.Run(other, dir.Path, _ => null)).Message);
    }

    [Fact]
    public void Factors_replace_the_final_evaluation_and_keep_its_examples_and_seed()
    {
        var sweep = StateCollapse.Sweep(quick: false, [1, 3]);
        Assert.Equal([64, 192], LengthGrid.EvalLengths(sweep));
        var eval = (Mnemo.Tasks.PasskeyConfig)sweep.Runs()[0].FinalEval!.Task;
        Assert.All(eval.Test, t => Assert.Equal(100, t.NumExamples));
        Assert.Equal(3, eval.TestSeed);
        Assert.Equal([64, 128, 256, 512, 1024], LengthGrid.EvalLengths(StateCollapse.Sweep(quick: false)));
    }

    [Theory]
    [InlineData(StateCollapse.Preset)]
    [InlineData(StateCollapse.QuickPreset)]
    public void A_collapse_folder_saved_in_the_old_flat_form_resumes_as_the_bundled_sweep(string preset)
    {
        // The collapse sweeps were first written in the old flat form (a "passkey" section, passkey.* overrides): a
        // folder's sweep.json from then converts when read, to the same runs, final evaluations and variants.
        var bundled = SweepConfig.Load(preset);
        var old = JsonNode.Parse(Mnemo.IO.ConfigBinder.ToJson(bundled))!.AsObject();
        var task = old["base"]!["task"]!.AsObject();
        Assert.Equal("passkey", task["kind"]!.GetValue<string>());
        task.Remove("kind");
        old["base"]!.AsObject().Remove("task");
        old["base"]!["passkey"] = task;
        old["final_eval"] = new JsonArray(bundled.FinalEval.Select(f => (JsonNode)JsonValue.Create(
            f.Replace("task.", "passkey.", StringComparison.Ordinal))!).ToArray());
        string oldJson = old.ToJsonString();
        Assert.Contains("passkey.test_seed=3", oldJson);
        Assert.Throws<Mnemo.IO.ConfigException>(() => SweepConfig.Parse(oldJson, "collapse.json"));   // refused as a config file

        static string Fingerprint(SweepRun r) => r.Config.ToJson() + r.FinalEval?.ToJson() + Mnemo.IO.ConfigBinder.ToJson(r.Variants!);
        Assert.Equal(bundled.Runs().Select(Fingerprint), SweepConfig.ParseSaved(oldJson, "sweep.json").Runs().Select(Fingerprint));
    }

    [Fact]
    public void Cli_collapse_quick_prints_the_table_and_writes_results_and_the_report()
    {
        using var dir = new Tmp.Dir();
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "collapse", "--quick", "--set", "training.steps=2", "--factors", "1", "2",
            "--out", "out");
        Assert.True(code == 0, stderr);
        Assert.Contains("| passkey | mamba2 | forget λ=4 |", stdout);
        Assert.Contains("| passkey | gated_delta_net | none |", stdout);
        Assert.Contains("largest state norm per layer", stdout);
        Assert.True(File.Exists(Path.Combine(dir.Path, "out", StateCollapse.ResultsFile)));
        Assert.True(File.Exists(Path.Combine(dir.Path, "out", "report", "index.html")));
        var (bad, _, err) = CliProcess.Run(dir.Path, "collapse", "--quick", "--set", "model.mixer=nonsense");
        Assert.Equal(2, bad);
        Assert.Contains("nonsense", err);
    }
}
