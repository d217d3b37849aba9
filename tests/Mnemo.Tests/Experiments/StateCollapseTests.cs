using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.Layers;
using Mnemo.Tests.Cli;

namespace Mnemo.Tests.Experiments;

[Collection(TorchCollection.Name)]
public class StateCollapseTests
{
    static StateCollapseSettings Tiny => StateCollapseSettings.Quick with
    {
        Training = StateCollapseSettings.Quick.Training with { Mixers = [MixerKind.Mamba2], Steps = 2, EvalFactors = [1, 2] },
        ForgetScales = [2],
    };

    [Fact]
    public void Quick_run_scores_every_mitigation_at_every_length_records_norms_and_resumes()
    {
        using var dir = new Tmp.Dir();
        var settings = Tiny;
        var lines = new List<string>();
        var cells = StateCollapse.Run(settings, dir.Path, (_, _) => null, lines.Add);

        var cell = Assert.Single(cells);
        Assert.Equal(["none", "forget λ=2", "state norm τ=1×max@L", "state norm τ=0.5×max@L", "window r=32"],
            cell.Scores.Select(s => s.Mitigation));
        Assert.All(cell.Scores, s => Assert.Equal(settings.Training.EvalLengths, s.Lengths.Select(l => l.SeqLen)));
        Assert.Equal(cell.Scores.Count, lines.Count);                          // one progress line per mitigation
        // τ per layer is the largest norm seen at t ≤ L; the longest length sees at least as much.
        Assert.Equal(2, cell.MaxNormAtTrainLength.Length);
        Assert.All(cell.MaxNormAtTrainLength, max => Assert.True(max > 0));
        // Traces at the longest length for the step-form mitigations (not the window), every layer.
        Assert.Equal(4 * 2, cell.Norms.Count);
        Assert.All(cell.Norms, n => Assert.Equal(settings.Training.EvalLengths.Max(), n.Norms.Length));
        // Each cap τ = m × (largest norm at t ≤ L) bounds its trace: "state norm τ=0.5×max@L" has m = 0.5.
        var capped = cell.Norms.Where(n => n.Mitigation.StartsWith("state norm", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, capped.Count);
        foreach (var n in capped)
        {
            double margin = double.Parse(n.Mitigation["state norm τ=".Length..n.Mitigation.IndexOf('×')],
                System.Globalization.CultureInfo.InvariantCulture);
            Assert.All(n.Norms, x => Assert.True(x <= margin * cell.MaxNormAtTrainLength[n.Layer] * (1 + 1e-6)));
        }

        var json = JsonNode.Parse(File.ReadAllText(dir[StateCollapse.ResultsFile]))!;
        Assert.Equal(settings.Training.TrainLength, json["train_length"]!.GetValue<int>());
        Assert.Equal(5, json["cells"]![0]!["scores"]!.AsArray().Count);
        Assert.True(new FileInfo(dir[StateCollapse.NormPlotFile]).Length > 1000);
        Assert.True(new FileInfo(dir[StateCollapse.AccuracyPlotFile]).Length > 1000);
        string table = StateCollapse.MarkdownTable(cells, settings);
        Assert.Contains("| passkey | mamba2 | window r=32 |", table);

        // Finished runs are not retrained: the same weights score the same.
        var again = StateCollapse.Run(settings, dir.Path, (_, _) => null);
        Assert.Equal(cells.Single().Scores.SelectMany(s => s.Lengths), again.Single().Scores.SelectMany(s => s.Lengths));
    }

    [Fact]
    public void A_model_without_a_matrix_memory_is_refused_by_name()
    {
        using var dir = new Tmp.Dir();
        var bad = Tiny with { Training = Tiny.Training with { Mixers = [MixerKind.Attention] } };
        var e = Assert.Throws<Mnemo.IO.ConfigException>(() => StateCollapse.Run(bad, dir.Path, (_, _) => null));
        Assert.Contains("attention", e.Message);
        Assert.False(Directory.Exists(dir["runs"]));     // refused before any training
    }

    [Fact]
    public void Cli_collapse_quick_prints_the_table_and_writes_results()
    {
        using var dir = new Tmp.Dir();
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "collapse", "--quick", "--mixers", "mamba2", "--steps", "2",
            "--factors", "1", "2", "--forget", "3", "--examples", "8", "--out", "out");
        Assert.True(code == 0, stderr);
        Assert.Contains("| passkey | mamba2 | forget λ=3 |", stdout);
        Assert.Contains("| passkey | mamba2 | none |", stdout);
        Assert.Contains("largest state norm per layer", stdout);
        Assert.True(File.Exists(Path.Combine(dir.Path, "out", StateCollapse.ResultsFile)));
        var (bad, _, err) = CliProcess.Run(dir.Path, "collapse", "--quick", "--mixers", "nonsense");
        Assert.Equal(2, bad);
        Assert.Contains("nonsense", err);
    }
}
