using Mnemo.Tasks;
using Mnemo.Text;
using Mnemo.Training;

namespace Mnemo.Tests.Training;

/// <summary>A 1-layer tiny model trains a few steps on each text task and is scored on every test bin.</summary>
[Collection(TorchCollection.Name)]
public class TextTaskTrainingTests
{
    static RunConfig Tiny() => TrainerTests.Tiny(4) with
    {
        Training = TrainerTests.Tiny(4).Training with { BatchSize = 4, EvalEvery = 4, CheckpointEvery = 4 },
    };

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void A_tiny_model_trains_on_niah(int variant)
    {
        using var dir = new Tmp.Dir();
        var niah = new NiahConfig
        {
            Variant = variant,
            Text = new TextConfig { GeneratedSentences = 200 },
            Train = [new() { SeqLen = 80, NumExamples = 16 }],
            Test = [new() { SeqLen = 96, NumExamples = 2, Depths = DepthKind.Even, DepthBins = 3 }],
        };
        var outcome = new Trainer(Tiny() with { Task = niah }, dir.Path).Run(resume: false);
        Assert.Equal(4, outcome.Steps);
        Assert.Equal(3, outcome.LastEval!.Slices.Count);
    }

    [Fact]
    public void A_tiny_model_trains_on_sort()
    {
        using var dir = new Tmp.Dir();
        var sort = new SortConfig
        {
            Text = new TextConfig { GeneratedSentences = 200 },
            Train = [new() { ExcerptLen = 40, SegmentLen = 4, NumExamples = 16 }],
            Test = [new() { ExcerptLen = 40, SegmentLen = 4, NumExamples = 2 }],
        };
        var outcome = new Trainer(Tiny() with { Task = sort }, dir.Path).Run(resume: false);
        Assert.Equal(4, outcome.Steps);
        Assert.Equal(Sort.BinCount, outcome.LastEval!.Slices.Count);
    }
}
