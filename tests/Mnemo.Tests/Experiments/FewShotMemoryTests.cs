using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Text;
using Mnemo.Training;
using static TorchSharp.torch;

namespace Mnemo.Tests.Experiments;

/// <summary>The few-shot memory study: ROUGE-L by hand, the materials keep what they claim to keep, the batched greedy
/// completion equals the streaming sampler, padding changes no item's loss, the weight snapshot restores exactly, and a
/// tiny study runs end to end and repeats itself from its seed.</summary>
[Collection(TorchCollection.Name)]
public class FewShotMemoryTests
{
    [Theory]
    [InlineData("the cat sat", "the cat sat on the mat", 2 * 1.0 * 0.5 / 1.5)]      // P = 3/3, R = 3/6
    [InlineData("The CAT, sat!", "the cat sat", 1.0)]                                  // case and punctuation are not words
    [InlineData("mat the on", "the cat sat on the mat", 2 * (2 / 3.0) * (2 / 6.0) / (2 / 3.0 + 2 / 6.0))]   // LCS "the mat" or "on …"
    [InlineData("", "the cat", 0.0)]
    [InlineData("dog", "the cat", 0.0)]
    public void Rouge_L_is_the_F1_of_the_longest_common_subsequence_of_words(string candidate, string reference, double expected) =>
        Assert.Equal(expected, Rouge.L(candidate, reference), 12);

    [Fact]
    public void The_longest_common_subsequence_matches_a_brute_force_count()
    {
        var rng = new Random(4);
        for (int trial = 0; trial < 200; trial++)
        {
            string[] a = [.. Enumerable.Range(0, rng.Next(0, 8)).Select(_ => "abc"[rng.Next(3)].ToString())];
            string[] b = [.. Enumerable.Range(0, rng.Next(0, 8)).Select(_ => "abc"[rng.Next(3)].ToString())];
            int best = 0;
            for (int mask = 0; mask < 1 << a.Length; mask++)                          // every subsequence of a: is it in b?
            {
                var sub = Enumerable.Range(0, a.Length).Where(i => (mask >> i & 1) == 1).Select(i => a[i]).ToArray();
                int j = 0;
                foreach (var word in b) if (j < sub.Length && sub[j] == word) j++;
                if (j == sub.Length) best = Math.Max(best, sub.Length);
            }
            Assert.Equal(best, Rouge.LongestCommonSubsequence(a, b));
        }
    }

    static FewShotConfig Tiny(params string[] more) => FewShotConfig.Load(null, [
        "corpus=generated", "items=6", "min_bytes=24", "max_bytes=60", "seq_len=32", "model.d_model=16", "model.num_heads=2",
        "model.num_layers=1", "pretraining.steps=4", "pretraining.batch_size=4", "pretraining.warmup_steps=1", "study_batch_size=4",
        .. more]);

    [Fact]
    public void The_materials_keep_what_they_claim_and_no_item_is_in_the_training_text()
    {
        var c = Tiny();
        var corpus = Corpora.Load(c.Corpus);
        int cut = (int)(corpus.Text.Length * 0.9);
        string heldOut = corpus.Text[cut..], train = corpus.Text[..cut];
        var natural = FewShotMemory.Items(heldOut, train, c, StudyMaterial.Natural, 5);
        string[] all = [.. natural.Studied, .. natural.Foils];
        Assert.Equal(2 * c.Items, all.Distinct().Count());
        Assert.All(all, s => Assert.InRange(s.Length, c.MinBytes, c.MaxBytes));
        Assert.All(all, s => Assert.DoesNotContain(s, train, StringComparison.Ordinal));
        Assert.All(all, s => Assert.Contains(s, heldOut, StringComparison.Ordinal));

        var gibberish = FewShotMemory.Items(heldOut, train, c, StudyMaterial.Gibberish, 5);
        foreach (var (g, s) in gibberish.Studied.Zip(natural.Studied))                // the same characters, words and lengths
        {
            Assert.Equal(s.Order(), g.Order());
            static IEnumerable<string> Letters(string text) => text.Split(' ').Select(w => new string([.. w.Order()])).Order();
            Assert.Equal(Letters(s), Letters(g));
        }
        Assert.NotEqual(natural.Studied, gibberish.Studied);

        var random = FewShotMemory.Items(heldOut, train, c, StudyMaterial.RandomWords, 5);
        var vocabulary = Rouge.Words(train).ToHashSet();
        foreach (var (r, s) in random.Studied.Zip(natural.Studied))
        {
            Assert.True(r.Length <= s.Length || !r.Contains(' '), $"\"{r}\" is longer than its sentence");
            Assert.All(r.Split(' '), w => Assert.Contains(w, vocabulary));
        }
        Assert.Equal(random.Studied, FewShotMemory.Items(heldOut, train, c, StudyMaterial.RandomWords, 5).Studied);
        Assert.NotEqual(natural.Studied, FewShotMemory.Items(heldOut, train, c, StudyMaterial.Natural, 6).Studied);
    }

    [Fact]
    public void Too_few_sentences_are_refused_naming_the_fields_to_change()
    {
        var c = Tiny("items=100000");
        var e = Assert.Throws<MnemoException>(() => FewShotMemory.Items("One short sentence here. And another one.", "", c,
            StudyMaterial.Natural, 1));
        Assert.Contains("items", e.Message);
        Assert.Contains("retention_exposures", Assert.Throws<ConfigException>(() => Tiny("retention_exposures=3")).Message);
        Assert.Contains("min_bytes", Assert.Throws<ConfigException>(() => Tiny("min_bytes=80")).Message);
    }

    [Theory]
    [InlineData(MixerKind.Attention)]
    [InlineData(MixerKind.GatedDeltaNet)]
    [InlineData(MixerKind.Lstm)]
    public void The_batched_greedy_completion_equals_the_streaming_sampler_and_padding_changes_no_loss(MixerKind mixer)
    {
        TorchRuntime.Seed(11);
        // Large initial weights spread the logits, so no two are near a tie that rounding could flip.
        using var model = new LanguageModel(new ModelConfig
        {
            Mixer = mixer, VocabSize = 256, DModel = 16, NumHeads = 2, NumLayers = 2, InitStd = 0.5, MaxPositions = 128,
        });
        string[] cues = ["It is a truth", "H", "universally acknowledged, that a single", "man"];
        int[] lengths = [9, 14, 3, 0];
        var batched = FewShotMemory.Complete(model, cues, lengths);
        for (int i = 0; i < cues.Length; i++)
        {
            var prompt = ByteTokenizer.Instance.Encode(cues[i]).Select(x => (long)x).ToArray();
            var streamed = Generation.Sample(model, prompt, lengths[i]);
            Assert.Equal(streamed.Select(x => (int)x), batched[i]);
        }
        using var noGrad = no_grad();
        var together = FewShotMemory.ItemBits(model, cues);
        for (int i = 0; i < cues.Length; i++)
        {
            if (cues[i].Length < 2) continue;                                           // nothing predicted
            Assert.Equal(FewShotMemory.ItemBits(model, [cues[i]])[0], together[i], 4);
        }
    }

    [Fact]
    public void A_weight_snapshot_puts_back_exactly_what_training_changed()
    {
        TorchRuntime.Seed(2);
        using var model = new LanguageModel(new ModelConfig { VocabSize = 32, DModel = 16, NumHeads = 2, NumLayers = 1 });
        var before = model.parameters().Select(p => p.detach().clone()).ToArray();
        using var snapshot = new WeightSnapshot(model);
        FitLoop.Run(model, new TrainingConfig { Steps = 3, BatchSize = 2, Lr = 1e-2, WarmupSteps = 0 }, "test",
            _ => model.forward(arange(8).view(1, 8)).square().mean());
        Assert.False(before.Zip(model.parameters()).All(p => p.First.eq(p.Second).all().item<bool>()));
        snapshot.Restore(model);
        Assert.True(before.Zip(model.parameters()).All(p => p.First.eq(p.Second).all().item<bool>()));
    }

    [Fact]
    public void A_tiny_study_runs_end_to_end_and_the_same_seed_repeats_it()
    {
        var c = Tiny("mixers=[attention, lstm]", "materials=[natural, random_words]", "exposures=[1, 2]", "retention_exposures=2",
            "interference_steps=3");
        var results = FewShotMemory.Run(c, [3]);
        // per mixer and material: before the study, 1 and 2 exposures, and after 1, 2 and 3 interference updates
        Assert.Equal(2 * 2 * 6, results.Count);
        var first = results.Take(6).ToArray();
        Assert.Equal([0, 1, 2, 2, 2, 2], first.Select(r => r.Exposures));
        Assert.Equal([0, 0, 0, 1, 2, 3], first.Select(r => r.Delay));
        Assert.All(results, r =>
        {
            Assert.InRange(r.Recognition, 0, 1);
            Assert.InRange(r.Recall, 0, 1);
            Assert.InRange(r.Verbatim, 0, 1);
            Assert.True(double.IsFinite(r.Studied) && r.Studied > 0);
        });
        Assert.True(results[2].Studied < results[0].Studied, "two exposures lower the studied items' loss");
        Assert.Equal(results, FewShotMemory.Run(c, [3]));
    }
}
