using Mnemo.Dialog;
using Mnemo.IO;
using Mnemo.Layers;
using static TorchSharp.torch;

namespace Mnemo.Tests.Dialog;

/// <summary>
/// The Visual Dialog study's parts: every generated answer is true of its scene, checked by reading the texts alone (so
/// "it" is resolved here independently of the generator's bookkeeping); the candidate sets; the rank metrics worked by
/// hand; and every encoder reading only rounds 0 … t for round t and ignoring the padding its batch adds.
/// </summary>
[Collection(TorchCollection.Name)]
public class DialogTests
{
    [Fact]
    public void Every_answer_is_true_of_the_scene_and_it_means_the_object_mentioned_last()
    {
        var dialogs = SceneDialogs.Generate(300, 7);
        static string Text(SceneDialog d) => d.Description + d.Caption + string.Join("|", d.Rounds.Select(r => r.Question + r.Answer));
        Assert.Equal(SceneDialogs.Generate(300, 7).Select(Text), dialogs.Select(Text));
        int referring = 0;
        foreach (var d in dialogs)
        {
            var scene = ReadScene(d.Description);
            Assert.Equal(SceneDialogs.Rounds, d.Rounds.Length);
            int it = -1;
            var caption = d.Caption.Split(' ');
            Assert.Equal(SceneDialogs.Numbers[scene.Length], caption[3]);
            if (caption.Length > 5) it = Single(scene, o => o[1] == caption[^2] && o[3] == caption[^1]);
            foreach (var round in d.Rounds)
            {
                var q = round.Question.Split(' ');
                string a = round.Answer;
                switch (round.Question)
                {
                    case var s when s.StartsWith("how many objects are "):
                        Assert.Equal(SceneDialogs.Numbers[scene.Count(o => o.Contains(q[4]))], a);
                        break;
                    case var s when s.StartsWith("what is on the far "):
                        it = q[5] == "left" ? 0 : scene.Length - 1;
                        Assert.Equal(Phrase(scene[it]), a);
                        break;
                    case var s when s.StartsWith("what color is the "):
                        it = Single(scene, o => o[3] == q[4]);
                        Assert.Equal(scene[it][1], a);
                        break;
                    case var s when s.StartsWith("is there a "):
                        int found = scene.Count(o => o[1] == q[3] && o[3] == q[4]);
                        Assert.Equal(found > 0 ? "yes" : "no", a);
                        if (found > 0) it = Single(scene, o => o[1] == q[3] && o[3] == q[4]);
                        break;
                    default:
                        referring++;
                        Assert.True(round.Refers, round.Question);
                        Assert.True(it >= 0, $"\"{round.Question}\" with nothing mentioned before");
                        if (round.Question is "what is it made of ?" or "what material is it ?") Assert.Equal(scene[it][2], a);
                        else if (round.Question == "what color is it ?") Assert.Equal(scene[it][1], a);
                        else if (q[1] == "it") Assert.Equal(scene[it][0] == q[2] ? "yes" : "no", a);
                        else
                        {
                            Assert.Equal("what is right of it ?", round.Question);
                            Assert.Equal(it + 1 < scene.Length ? Phrase(scene[it + 1]) : "nothing", a);
                            if (it + 1 < scene.Length) it++;
                        }
                        break;
                }
                Assert.Equal(round.Refers, q.Contains("it"));
            }
        }
        Assert.InRange(referring, 300 * 10 * 0.3, 300 * 10 * 0.5);                   // a good share needs the history
    }

    /// <summary>The scene's objects as [size, color, material, shape] from the description's text.</summary>
    static string[][] ReadScene(string description) =>
        [.. description["from left to right : ".Length..].Split(" , ").Select(o => o.Split(' '))];

    static string Phrase(string[] o) => $"a {o[0]} {o[1]} {o[3]}";

    static int Single(string[][] scene, Func<string[], bool> match)
    {
        var found = Enumerable.Range(0, scene.Length).Where(i => match(scene[i])).ToArray();
        Assert.Single(found);
        return found[0];
    }

    [Fact]
    public void Candidates_are_distinct_hold_the_answer_and_the_same_templates_answers()
    {
        var train = SceneDialogs.Generate(200, 1);
        var sets = new CandidateSets(train, 100, 50, 30);
        var rng = new Random(3);
        foreach (var round in SceneDialogs.Generate(20, 2).SelectMany(d => d.Rounds))
        {
            var (candidates, truth) = sets.For(round, rng);
            Assert.Equal(100, candidates.Length);
            Assert.Equal(100, candidates.Distinct().Count());
            Assert.Equal(round.Answer, SceneDialogs.AllAnswers[candidates[truth]]);
            var sameTemplate = train.SelectMany(d => d.Rounds).Where(r => r.Kind == round.Kind).Select(r => r.Answer).ToHashSet();
            int plausible = candidates.Count(c => sameTemplate.Contains(SceneDialogs.AllAnswers[c]));
            Assert.True(plausible >= Math.Min(sameTemplate.Count, 51), $"{round.Kind}: {plausible} of {sameTemplate.Count}");
        }
        Assert.Throws<MnemoException>(() => new CandidateSets(train, 100, 70, 30));
        Assert.Throws<MnemoException>(() => new CandidateSets(train, SceneDialogs.AllAnswers.Count + 1, 5, 5));
    }

    [Fact]
    public void Ranks_count_ties_against_the_answer_and_the_metrics_follow_them()
    {
        using var scores = tensor(new float[] { 0.5f, 0.9f, 0.1f, 2, 2, 2, 3, 1, 0 }).view(3, 3);
        using var truth = tensor(new long[] { 1, 0, 1 });
        Assert.Equal([1, 3, 2], Ranking.Ranks(scores, truth));
        var m = RankMetrics.Of([1, 3, 2, 12]);
        Assert.Equal((1 + 1 / 3.0 + 0.5 + 1 / 12.0) / 4, m.Mrr, 12);
        Assert.Equal(0.25, m.RecallAt1);
        Assert.Equal(0.75, m.RecallAt5);
        Assert.Equal(0.75, m.RecallAt10);
        Assert.Equal(4.5, m.MeanRank);
    }

    static readonly ModelConfig Tiny = new() { DModel = 16, NumLayers = 1, NumHeads = 2, MlpRatio = 0, Mixer = MixerKind.Lstm };

    [Theory]
    [InlineData("lf-qih", MixerKind.Lstm)]
    [InlineData("hre-qih", MixerKind.Lstm)]
    [InlineData("mn-qih", MixerKind.Lstm)]
    [InlineData("hre-qh", MixerKind.GatedDeltaNet)]
    [InlineData("lf-qh", MixerKind.Attention)]
    public void Round_t_reads_rounds_up_to_t_only_and_never_the_padding(string encoder, MixerKind mixer)
    {
        var data = DialogSets.Build(new DialogDataConfig
        {
            TrainDialogs = 40, TestDialogs = 4, Candidates = 20, Plausible = 5, Popular = 5,
        });
        Mnemo.Runtime.TorchRuntime.Seed(5);
        using var model = new DialogModel(Tiny with { Mixer = mixer }, EncoderSpec.Parse(encoder), data.Words);
        model.eval();
        using var noGrad = no_grad();
        const int t = 4;
        // Test dialog 1 with its rounds after t replaced by another dialog's: rounds 0 … t must score alike.
        var original = data.Test[1];
        var changed = original with { Rounds = [.. original.Rounds.Take(t + 1), .. data.Test[2].Rounds.Skip(t + 1)] };
        var candidates = data.CandidatesOf(true, 1);
        using var alone = DialogBatch.Of(data.Words, [original], [candidates]);
        using var future = DialogBatch.Of(data.Words, [changed], [candidates]);
        using var padded = DialogBatch.Of(data.Words, [data.Test[0], original, data.Test[3]],
            [data.CandidatesOf(true, 0), candidates, data.CandidatesOf(true, 3)]);
        using var a = model.Scores(alone);                                              // [1, R, N]
        using var b = model.Scores(future);
        using var c = model.Scores(padded);
        AssertClose(a[0, ..(t + 1)], b[0, ..(t + 1)]);
        Assert.False(a[0, (t + 1)..].allclose(b[0, (t + 1)..], 1e-4, 1e-4), "later rounds should see their own questions");
        AssertClose(a[0], c[1]);
    }

    static void AssertClose(Tensor expected, Tensor actual)
    {
        double error = (expected - actual).abs().max().item<float>(), scale = expected.abs().max().item<float>();
        Assert.True(error <= 1e-5 * Math.Max(1, scale), $"max difference {error:E2} (scale {scale:F3})");
    }

    [Fact]
    public void A_short_study_learns_more_than_the_answer_prior_and_the_same_seed_repeats_it()
    {
        var c = DialogConfig.Load(null, ["model.d_model=32", "training.steps=80", "training.warmup_steps=5", "training.batch_size=8",
            "data.train_dialogs=400", "data.test_dialogs=40"]);
        var data = DialogSets.Build(c.Data);
        var runs = DialogStudy.Run(c, data, [MixerKind.Lstm], [EncoderSpec.Parse("answer-prior"), EncoderSpec.Parse("lf-qih")], [1, 1]);
        Assert.Equal(4, runs.Count);
        Assert.Equal(runs[0].All, runs[1].All);                                        // same seed, same numbers
        Assert.Equal(runs[2].All, runs[3].All);
        Assert.True(runs[2].All.Mrr > runs[0].All.Mrr + 0.05, $"lf-qih MRR {runs[2].All.Mrr:F3}, answer prior {runs[0].All.Mrr:F3}");
        Assert.Equal(400, runs[2].All.Questions);
        Assert.Equal(400, runs[2].Referring.Questions + runs[2].Naming.Questions);
    }

    [Fact]
    public void Bad_settings_name_their_field()
    {
        var e = Assert.Throws<ConfigException>(() => DialogConfig.Load(null, ["data.candidates=500"]));
        Assert.Contains("data.candidates", e.Message);
        Assert.Throws<MnemoException>(() => EncoderSpec.Parse("hre-q"));
        var bidirectional = Tiny with { Rnn = new() { Bidirectional = true } };
        var words = new DialogWords(SceneDialogs.AllAnswers);
        Assert.Contains("model.rnn.bidirectional", Assert.Throws<MnemoException>(() =>
            new DialogModel(bidirectional, EncoderSpec.Parse("lf-q"), words)).Message);
    }
}
