using Mnemo.Experiments;
using static TorchSharp.torch;

namespace Mnemo.Tests.Experiments;

/// <summary>The needle-in-a-stream task's streams, the models' readouts and determinism.</summary>
[Collection(TorchCollection.Name)]
public class StreamNeedleTests
{
    static readonly StreamNeedleConfig Small = new() { Steps = 3, Batch = 2, TestFrames = [40], TestExamples = 4 };

    [Fact]
    public void A_stream_holds_one_needle_on_an_axis_no_scene_uses()
    {
        var needles = StreamNeedle.NeedleVectors(Small);
        var random = new Random(3);
        for (int i = 0; i < 20; i++)
        {
            var e = StreamNeedle.Draw(random, needles, 150, Small);
            Assert.Equal(150, e.Frames.Length);
            Assert.All(e.Frames, f => Assert.Equal(16, f.Length));
            // Only the needle frame is large on a needle axis (scenes add noise of σ 0.3 there, never 2.5).
            var large = Enumerable.Range(0, 150).Where(t => e.Frames[t].Take(4).Any(v => Math.Abs(v) > 2.5)).ToArray();
            Assert.Equal([e.At], large);
            Assert.Equal(e.Needle, Array.IndexOf(e.Frames[e.At], e.Frames[e.At].Take(4).Max()));
        }
    }

    [Theory]
    [InlineData("bridge")]
    [InlineData("bridge-no-retrieval")]
    [InlineData("bridge-fixed")]
    [InlineData("attention")]
    public void Every_model_names_one_of_the_needles_and_a_seed_repeats_its_scores(string model)
    {
        using var scope = NewDisposeScope();
        var e = StreamNeedle.Draw(new Random(5), StreamNeedle.NeedleVectors(Small), 40, Small);
        var logits = new StreamNeedle.Classifier(model, Small).Forward(e, out int segments);
        Assert.Equal([4], logits.shape);
        if (model == "bridge-fixed") Assert.Equal(3, segments);                        // 40 frames in segments of 16
        if (model == "attention") Assert.Equal(1, segments);
        static List<StreamNeedleScore> Scores(string model) =>
            [.. StreamNeedle.Run(model, 7, Small).Select(s => s with { TrainSeconds = 0 })];
        Assert.Equal(Scores(model), Scores(model));
    }

    [Fact]
    public void An_unknown_model_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new StreamNeedle.Classifier("lstm", Small));
        Assert.Contains("bridge", error.Message);
    }
}
