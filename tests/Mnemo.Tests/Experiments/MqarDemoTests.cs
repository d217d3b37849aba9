using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.Layers;
using Mnemo.Sweeps;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Tests.Experiments;

[Collection(TorchCollection.Name)]
public class MqarDemoTests
{
    /// <summary>The demo's grid shrunk to seconds: two mixers, two learning rates, two test slices.</summary>
    static SweepConfig Tiny => new()
    {
        Name = "tiny",
        Base = new RunConfig
        {
            Model = new ModelConfig { Mixer = MixerKind.Attention, DModel = 16, NumLayers = 2, NumHeads = 2, MlpRatio = 0 },
            Task = new MqarConfig
            {
                VocabSize = 64,
                Train = [new MqarSlice { SeqLen = 16, NumKvPairs = 2, NumExamples = 64 }],
                Test =
                [
                    new MqarSlice { SeqLen = 16, NumKvPairs = 2, NumExamples = 16 },
                    new MqarSlice { SeqLen = 32, NumKvPairs = 4, NumExamples = 16 },
                ],
            },
            Training = new TrainingConfig
            {
                Steps = 6, BatchSize = 8, WarmupSteps = 0, EvalEvery = 3, CheckpointEvery = 3, TargetAccuracy = 0.99, KeepCheckpoints = 1,
            },
        },
        Axes =
        [
            new SweepAxis
            {
                Name = "model",
                Values =
                [
                    new SweepValue { Name = "attention", Set = ["model.mixer=attention"] },
                    new SweepValue { Name = "gated_delta_net", Set = ["model.mixer=gated_delta_net"] },
                ],
            },
        ],
        LearningRates = [1e-3, 1e-2],
    };

    [Fact]
    public void Demo_writes_results_plots_and_resumes_without_retraining()
    {
        using var dir = new Tmp.Dir();
        var first = MqarDemo.Run(Tiny, dir.Path, _ => null)!;
        Assert.Equal(["attention", "gated_delta_net"], first.Select(r => r.Model));
        foreach (var r in first)
        {
            Assert.Equal(2, r.Slices.Count);
            Assert.Equal(2, r.AccuracyByLr.Count);
            Assert.Equal(r.AccuracyByLr.Values.Max(), r.Accuracy);  // the best learning rate is reported
            Assert.True(r.Parameters > 0 && r.Steps > 0);
        }
        // Attention's KV cache grows with the context (2·L·d at L = 32); a matrix memory is H·Dk·Dv.
        Assert.Equal(2 * 32 * 16, first[0].StateFloatsPerLayer);
        Assert.Equal(2 * 8 * 8, first[1].StateFloatsPerLayer);

        var json = JsonNode.Parse(File.ReadAllText(dir[MqarDemo.ResultsFile]))!;
        Assert.Equal(2, json["models"]!.AsArray().Count);
        Assert.True(new FileInfo(dir[MqarDemo.AccuracyPlotFile]).Length > 1000);
        Assert.True(new FileInfo(dir[MqarDemo.LossPlotFile]).Length > 1000);

        // A second run finds every run finished, trains nothing and reports the same numbers.
        var lines = new List<string>();
        var again = MqarDemo.Run(Tiny, dir.Path, _ => null, lines.Add)!;
        Assert.Contains(lines, l => l.Contains("4 already done", StringComparison.Ordinal));
        Assert.Equal(first.Select(r => r.Accuracy), again.Select(r => r.Accuracy));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_bundled_demo_is_the_readme_grid_and_needs_no_download(bool full)
    {
        var sweep = MqarDemo.Sweep(full);
        var runs = sweep.Runs();
        Assert.Equal(["attention", "linear_attention", "gated_delta_net"], runs.Select(r => r.Cell["model"]).Distinct());
        Assert.Equal(full ? [1e-4, 4.6e-4, 2.2e-3, 1e-2] : [1e-3, 3e-3], sweep.LearningRates);
        foreach (var run in runs)
        {
            var c = run.Config;
            Assert.Equal((64, 2, 2, 0.0), (c.Model.DModel, c.Model.NumLayers, c.Model.NumHeads, c.Model.MlpRatio));
            var mqar = Assert.IsType<MqarConfig>(c.Task);   // a generated task: nothing to download
            Assert.Equal(full ? 512 : 256, mqar.VocabSize);
            Assert.Equal(full ? 3000 : 800, c.Training.Steps);
            Assert.Null(run.FinalEval);                           // scored on its own test slices
        }
        var test = MqarDemo.TestSlices(sweep);
        Assert.Equal(full ? [(64, 4), (128, 8), (256, 16), (256, 32), (256, 64)] : [(64, 4), (64, 8), (64, 16)],
            test.Select(s => (s.SeqLen, s.NumKvPairs)));
    }
}
