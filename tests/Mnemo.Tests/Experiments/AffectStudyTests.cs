using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Tests.Experiments;

/// <summary>The affect study: the videos have the structure the docs claim, each classifier reads exactly the context its
/// kind says, and a tiny study runs, beats chance with context, and repeats from its seed.</summary>
[Collection(TorchCollection.Name)]
public class AffectStudyTests
{
    [Fact]
    public void Classes_persist_at_the_stay_rate_ambiguity_and_layout_are_as_configured()
    {
        var c = new AffectVideosConfig { Stay = 0.7, Ambiguous = 0.25, Utterances = 20 };
        var world = new AffectVideos(c, 1);
        var videos = world.Generate(2000, 2);
        var pairs = videos.SelectMany(v => v.Labels.Zip(v.Labels.Skip(1))).ToArray();
        Assert.InRange(pairs.Count(p => p.First == p.Second) / (double)pairs.Length, 0.68, 0.72);
        Assert.InRange(videos.SelectMany(v => v.Ambiguous).Count(a => a) / 40_000.0, 0.23, 0.27);
        Assert.All(videos, v => Assert.All(v.Features, f => Assert.Equal(c.Dims.Sum(), f.Length)));
        Assert.Equal((16, 24), world.Columns(Modality.Audio));
        Assert.Equal(videos[7].Features[3], new AffectVideos(c, 1).Generate(2000, 2)[7].Features[3]);
        // nearest class mean: clear utterances carry their class, ambiguous ones next to nothing (chance is 25%)
        var all = videos.SelectMany(v => v.Features.Select((f, t) => (F: f, Y: v.Labels[t], A: v.Ambiguous[t]))).ToArray();
        var means = Enumerable.Range(0, c.Classes).Select(y => Enumerable.Range(0, c.Dims.Sum())
            .Select(j => all.Where(x => x.Y == y && !x.A).Average(x => (double)x.F[j])).ToArray()).ToArray();
        double Accuracy(bool ambiguous) => all.Where(x => x.A == ambiguous).Average(x =>
            Enumerable.Range(0, c.Classes).MinBy(k => x.F.Select((v, j) => (v - means[k][j]) * (v - means[k][j])).Sum()) == x.Y ? 1.0 : 0);
        Assert.InRange(Accuracy(false), 0.55, 1);
        Assert.InRange(Accuracy(true), 0, 0.35);
    }

    [Theory]
    [InlineData(AffectClassifierKind.Fc, false, false)]
    [InlineData(AffectClassifierKind.ScLstm, true, false)]
    [InlineData(AffectClassifierKind.BcLstm, true, true)]
    [InlineData(AffectClassifierKind.BcLstmHier, true, true)]
    public void Each_classifier_reads_the_context_its_kind_says(AffectClassifierKind kind, bool readsBefore, bool readsAfter)
    {
        TorchRuntime.Seed(3);
        using var model = new AffectClassifier(new ModelConfig { Mixer = MixerKind.Lstm, DModel = 8, NumLayers = 1, NumHeads = 1 },
            kind, [3, 2], 4);
        using var noGrad = no_grad();
        var x = randn(2, 6, 5);
        var y = model.forward(x);
        Assert.Equal([2L, 6, 4], y.shape);
        bool Changes(int at)
        {
            var changed = x.clone();
            changed[.., at] = randn(2, 5);
            return !model.forward(changed).select(1, 3).eq(y.select(1, 3)).all().item<bool>();      // any change at all
        }
        Assert.True(Changes(3), "an utterance's own features change its scores");
        Assert.Equal(readsBefore, Changes(1));
        Assert.Equal(readsAfter, Changes(5));
    }

    [Fact]
    public void A_tiny_study_runs_context_helps_and_the_same_seed_repeats_it()
    {
        var c = AffectConfig.Load(null, ["videos.train_videos=300", "videos.test_videos=100", "videos.utterances=8",
            "classifiers=[fc, bc_lstm]", "modality_sets=[[text]]", "model.d_model=16", "training.steps=150",
            "training.warmup_steps=10", "videos.stay=0.95", "videos.ambiguous=0.5", "videos.signal=[1, 0.3, 0.25]",
            "videos.speaker_std=0"]);
        var runs = AffectStudy.Run(c, [1]);
        Assert.Equal(2, runs.Count);
        Assert.True(runs.All(r => r.Accuracy > 0.3), string.Join("; ", runs));           // above chance (25%)
        Assert.True(runs[1].AmbiguousAccuracy > runs[0].AmbiguousAccuracy + 0.1,
            $"context resolves ambiguous utterances: bc_lstm {runs[1].AmbiguousAccuracy:F3} vs fc {runs[0].AmbiguousAccuracy:F3}");
        Assert.Equal(runs.Select(r => r with { Seconds = 0 }), AffectStudy.Run(c, [1]).Select(r => r with { Seconds = 0 }));
    }

    [Theory]
    [InlineData("model.mixer=gated_delta_net", "model.mixer")]
    [InlineData("modality_sets=[[text, text]]", "modality_sets")]
    [InlineData("videos.dims=[4, 4]", "videos.dims")]
    public void Bad_settings_name_their_field(string setting, string field) =>
        Assert.Contains(field, Assert.Throws<ConfigException>(() => AffectConfig.Load(null, [setting])).Message);
}
