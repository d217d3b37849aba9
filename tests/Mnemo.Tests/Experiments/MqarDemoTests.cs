using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.Layers;
using Mnemo.Tasks;

namespace Mnemo.Tests.Experiments;

[Collection(TorchCollection.Name)]
public class MqarDemoTests
{
    static DemoSettings Tiny => new()
    {
        Name = "tiny",
        Mixers = [MixerKind.Attention, MixerKind.GatedDeltaNet],
        DModel = 16,
        VocabSize = 64,
        Train = [new MqarSlice { SeqLen = 16, NumKvPairs = 2, NumExamples = 64 }],
        Test =
        [
            new MqarSlice { SeqLen = 16, NumKvPairs = 2, NumExamples = 16 },
            new MqarSlice { SeqLen = 32, NumKvPairs = 4, NumExamples = 16 },
        ],
        LearningRates = [1e-3, 1e-2],
        Steps = 6,
        BatchSize = 8,
        EvalEvery = 3,
    };

    [Fact]
    public void Demo_writes_results_plots_and_resumes_without_retraining()
    {
        using var dir = new Tmp.Dir();
        var first = MqarDemo.Run(Tiny, dir.Path, (_, _) => null);
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

        var json = JsonNode.Parse(File.ReadAllText(dir["results.json"]))!;
        Assert.Equal(2, json["models"]!.AsArray().Count);
        Assert.True(new FileInfo(dir["accuracy.png"]).Length > 1000);
        Assert.True(new FileInfo(dir["loss.png"]).Length > 1000);

        // A second run finds every run finished and reports the same numbers.
        var again = MqarDemo.Run(Tiny, dir.Path, (_, _) => null);
        Assert.Equal(first.Select(r => r.Accuracy), again.Select(r => r.Accuracy));
    }
}
