using Mnemo.IO;
using Mnemo.Tasks;
using Mnemo.Tasks.Mad;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

public class MadTests
{
    const long I = TaskBatch.Ignore;

    static IEnumerable<(long[] X, long[] Y)> Rows(TaskBatch b)
    {
        for (int i = 0; i < b.Count; i++)
            yield return (b.Inputs[(i * b.SeqLen)..((i + 1) * b.SeqLen)], b.Labels[(i * b.SeqLen)..((i + 1) * b.SeqLen)]);
    }

    static (TaskBatch Train, TaskBatch Test) Both(MadConfig c, int n = 200) =>
        (Mad.Generate(c, n, 7, train: true), Mad.Generate(c, n, 7, train: false));

    /// <summary>The whole token sequence of a shifted row: the inputs and the last next-token label.</summary>
    static long[] Sequence(long[] x, long[] trainLabels) => [.. x, trainLabels[^1]];

    [Theory]
    [InlineData(MadTask.InContextRecall, 16, 128)]
    [InlineData(MadTask.InContextRecall, 64, 256)]
    [InlineData(MadTask.NoisyInContextRecall, 32, 128)]
    [InlineData(MadTask.NoisyInContextRecall, 48, 64)]
    public void In_context_recall_probes_exactly_the_values_of_keys_seen_before(MadTask task, int vocab, int seqLen)
    {
        var c = new MadConfig { Task = task, VocabSize = vocab, SeqLen = seqLen };
        var (train, test) = Both(c);
        Assert.Equal(seqLen - 1, train.SeqLen);
        Assert.Equal(train.Inputs, test.Inputs);                                   // one stream; only the labels differ
        int nonSpecial = task == MadTask.NoisyInContextRecall ? vocab - c.NoiseVocabSize : vocab;
        int noiseSlots = 0, slots = 0;
        foreach (var ((x, yTrain), (_, yTest)) in Rows(train).Zip(Rows(test)))
        {
            var s = Sequence(x, yTrain);
            for (int t = 0; t + 1 < x.Length; t++) Assert.Equal(x[t + 1], yTrain[t]);   // train: every next token
            var map = new Dictionary<long, long>();
            for (int p = 0; p < s.Length; p += 2)
            {
                long k = s[p], v = s[p + 1];
                if (k >= nonSpecial)
                {
                    Assert.InRange(v, nonSpecial, vocab - 1);                         // two noise tokens
                    Assert.All(yTest[Math.Max(0, p - 1)..(p + 1)], l => Assert.Equal(I, l));
                    noiseSlots++;
                    slots++;
                    continue;
                }
                slots++;
                Assert.InRange(k, 0, nonSpecial / 2 - 1);
                Assert.InRange(v, nonSpecial / 2, nonSpecial - 1);
                bool seen = map.TryGetValue(k, out long before);
                if (seen) Assert.Equal(before, v);                                   // one value per key
                map[k] = v;
                Assert.Equal(seen ? v : I, yTest[p]);                                // the key's position predicts the value
                if (p > 0) Assert.Equal(I, yTest[p - 1]);                            // keys are never targets
            }
            Assert.NotEqual(I, yTest[^1]);                                           // the final probe is always asked
        }
        double frac = (double)noiseSlots / slots;
        if (task == MadTask.InContextRecall) Assert.Equal(0, noiseSlots);
        else Assert.InRange(frac, 0.15, 0.25);                                      // frac_noise 0.2
    }

    [Theory]
    [InlineData(16, 128, true)]
    [InlineData(16, 128, false)]
    [InlineData(32, 64, true)]
    public void Fuzzy_recall_keys_and_values_are_motifs_and_probes_are_answerable(int vocab, int seqLen, bool train)
    {
        var c = new MadConfig { Task = MadTask.FuzzyInContextRecall, VocabSize = vocab, SeqLen = seqLen };
        var batch = Mad.Generate(c, 200, 3, train);
        Assert.Equal(seqLen, batch.SeqLen);
        long pad = vocab - 1;
        int half = (vocab - 1) / 2;
        var keySizes = new HashSet<int>();
        foreach (var (x, y) in Rows(batch))
        {
            // the last label is the probe's last value token either way
            var s = Sequence(x, y);
            int start = 0;
            while (s[start] == pad) start++;
            if (!train) Assert.All(y[..Math.Max(0, start - 1)], l => Assert.Equal(I, l));
            // Split into alternating runs of key tokens and value tokens: (key motif, value motif) pairs.
            var pairs = new List<(long[] K, long[] V, int VAt)>();
            for (int p = start; p < s.Length;)
            {
                int k0 = p;
                while (s[p] < half) p++;
                int v0 = p;
                while (p < s.Length && s[p] >= half && s[p] < pad) p++;
                Assert.True(v0 > k0 && p > v0, "a key motif followed by a value motif");
                pairs.Add((s[k0..v0], s[v0..p], v0));
            }
            var map = new Dictionary<string, string>();
            foreach (var (k, v, vAt) in pairs)
            {
                Assert.Equal(k.Length, k.Distinct().Count());
                Assert.InRange(k.Length, 1, c.KMotifSize);
                Assert.InRange(v.Length, 1, c.VMotifSize);
                keySizes.Add(k.Length);
                string key = string.Join(',', k), value = string.Join(',', v);
                bool seen = map.TryGetValue(key, out var before);
                if (seen) Assert.Equal(before, value);
                map[key] = value;
                for (int j = 0; j < v.Length; j++)
                {
                    long label = y[vAt + j - 1];
                    if (train) Assert.Equal(v[j], label);
                    else if (label != I) { Assert.True(seen); Assert.Equal(v[j], label); }
                }
            }
            var last = pairs[^1];
            Assert.True(pairs.Take(pairs.Count - 1).Any(p => p.K.SequenceEqual(last.K)), "the final probe's key is in the context");
            if (!train) Assert.All(Enumerable.Range(0, last.V.Length), j => Assert.Equal(last.V[j], y[last.VAt + j - 1]));
        }
        if (train) Assert.Equal(c.KMotifSize, keySizes.Count);                   // every motif size occurs in training
        else Assert.Equal([c.KMotifSize], keySizes);                                 // test keys are always the longest
    }

    [Theory]
    [InlineData(BlankPlacement.BeforeRandomToken, 16, 256, 16)]
    [InlineData(BlankPlacement.UniformPositions, 16, 256, 16)]
    [InlineData(BlankPlacement.UniformPositions, 32, 100, 32)]
    public void Selective_copying_labels_are_the_data_tokens_in_order(BlankPlacement placement, int vocab, int seqLen, int count)
    {
        var batch = SelectiveCopying.Generate(vocab, seqLen, count, placement, 300, 5);
        long copy = vocab - 1, blank = vocab - 2;
        int prefix = seqLen - count - 1, lastIsData = 0;
        foreach (var (x, y) in Rows(batch))
        {
            var data = x[..prefix].Where(t => t != blank).ToArray();
            Assert.Equal(count, data.Length);
            Assert.All(data, t => Assert.InRange(t, 0, vocab - 3));
            Assert.Equal(copy, x[prefix]);
            Assert.All(x[(prefix + 1)..], t => Assert.Equal(blank, t));
            Assert.All(y[..(prefix + 1)], l => Assert.Equal(I, l));
            Assert.Equal(data, y[(prefix + 1)..]);
            if (x[prefix - 1] != blank) lastIsData++;
        }
        // MAD inserts blanks only before data tokens; uniform positions leave blanks after the last one too.
        if (placement == BlankPlacement.BeforeRandomToken) Assert.Equal(300, lastIsData);
        else Assert.InRange(lastIsData, 1, 299);
    }

    [Fact]
    public void Compression_labels_are_the_tokens_before_the_compression_token()
    {
        var c = new MadConfig { Task = MadTask.Compression };
        var (train, test) = Both(c);
        Assert.Equal(train.Labels, test.Labels);
        Assert.Equal(32, train.SeqLen);
        foreach (var (x, y) in Rows(train))
        {
            Assert.Equal(15, x[^1]);
            Assert.Equal(I, y[^1]);
            Assert.Equal(x[..^1], y[..^1]);
            Assert.All(x[..^1], t => Assert.InRange(t, 0, 14));
        }
        Assert.Equal(Mnemo.Models.Readout.Compression, ((ITask)c).Readout());
    }

    [Fact]
    public void Memorization_uses_one_fixed_map_for_train_and_test()
    {
        var c = new MadConfig { Task = MadTask.Memorization };
        var (keys, values) = Memorization.Map(256, 12345);
        Assert.Equal(127, keys.Length);
        Assert.Equal(keys.Length, values.Distinct().Count());
        Assert.All(keys, k => Assert.InRange(k, 0, 126));
        Assert.All(values, v => Assert.InRange(v, 127, 254));
        Assert.Equal(values, Memorization.Map(256, 12345).Values);
        Assert.NotEqual(values, Memorization.Map(256, 1).Values);
        var map = keys.Zip(values).ToDictionary();
        foreach (var batch in c.TrainBatches().Concat(c.TestBatches()))
            foreach (var (x, y) in Rows(batch))
                for (int p = 0; p < x.Length; p += 2)
                {
                    Assert.Equal(I, y[p]);
                    Assert.Equal(255, x[p + 1]);
                    Assert.Equal(map[x[p]], y[p + 1]);
                }
    }

    [Theory]
    [InlineData(MadTask.InContextRecall, 16, 127, 12_800)]
    [InlineData(MadTask.FuzzyInContextRecall, 16, 128, 12_800)]
    [InlineData(MadTask.NoisyInContextRecall, 32, 127, 12_800)]
    [InlineData(MadTask.SelectiveCopying, 16, 256, 12_800)]
    [InlineData(MadTask.Compression, 16, 32, 12_800)]
    [InlineData(MadTask.Memorization, 256, 32, 256)]
    public void Defaults_are_the_MAD_baselines(MadTask task, int vocab, int rowLen, int train)
    {
        var c = new MadConfig { Task = task, NumTestExamples = 4 };
        Assert.Equal(vocab, ((ITask)c).VocabSize);
        Assert.Equal(train, c.TrainExamples);
        var test = c.TestBatches().Single();
        Assert.Equal(rowLen, test.SeqLen);
        Assert.Equal(4, test.Count);
        Assert.All(test.Inputs, t => Assert.InRange(t, 0, vocab - 1));
        Assert.All(test.Labels, t => Assert.True(t == I || (t >= 0 && t < vocab)));
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_different_examples()
    {
        foreach (var task in Enum.GetValues<MadTask>())
        {
            var c = new MadConfig { Task = task };
            var a = Mad.Generate(c, 20, 3, true);
            Assert.Equal(a.Inputs, Mad.Generate(c, 20, 3, true).Inputs);
            Assert.Equal(a.Labels, Mad.Generate(c, 20, 3, true).Labels);
            Assert.NotEqual(a.Inputs, Mad.Generate(c, 20, 4, true).Inputs);
        }
    }

    [Fact]
    public void The_difficulty_grid_holds_the_baseline_and_each_change()
    {
        Assert.Equal(11, MadScore.Settings(MadTask.InContextRecall).Count);
        Assert.Equal(14, MadScore.Settings(MadTask.NoisyInContextRecall).Count);
        Assert.Equal(13, MadScore.Settings(MadTask.SelectiveCopying).Count);
        var memo = MadScore.Settings(MadTask.Memorization, new MadConfig { TestSeed = 9 });
        Assert.Equal([256, 512, 1024, 2048, 4096, 8192], memo.Select(s => s.Vocab));
        Assert.All(memo, s => Assert.Equal(9, s.TestSeed));
        var noisy = MadScore.Settings(MadTask.NoisyInContextRecall);
        Assert.Equal([0.2, 0.4, 0.6, 0.8], noisy.Select(s => s.FracNoise).Distinct());
        Assert.All(Enum.GetValues<MadTask>().SelectMany(t => MadScore.Settings(t)), s => Assert.Empty(s.Validate()));
        Assert.Equal(0.5, MadScore.Score([0.25, 0.75]), 12);
    }

    [Fact]
    public void The_run_config_trains_on_mad_when_the_section_is_present()
    {
        var c = RunConfig.Parse("""{ "task": { "kind": "mad", "task": "memorization", "vocab_size": 64 } }""", "run.json");
        Assert.IsType<MadConfig>(c.Task);
        Assert.Equal(64, c.ResolvedModel.VocabSize);
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
        Assert.IsType<SelectiveCopyingConfig>(RunConfig.Parse("""{ "task": { "kind": "selective_copying" } }""", "run.json").Task);
    }

    [Fact]
    public void The_bundled_presets_parse_and_validate()
    {
        var mad = Assert.IsType<MadConfig>(RunConfig.Load("mad-in-context-recall").Task);
        Assert.Equal(MadBaseline.Of(MadTask.InContextRecall), new MadBaseline(mad.Vocab, mad.Length, mad.TrainExamples));
        var verbatim = Assert.IsType<Mnemo.Tasks.Verbatim.VerbatimConfig>(RunConfig.Load("verbatim-repetition").Task);
        Assert.Equal(2, verbatim.Test.Length);
    }

    [Theory]
    [InlineData("""{ "task": { "kind": "mad", "train_seed": 3, "test_seed": 3 } }""", "task.test_seed")]
    [InlineData("""{ "task": { "kind": "mad", "seq_len": 31 } }""", "task.seq_len")]
    [InlineData("""{ "task": { "kind": "mad", "task": "selective_copying", "seq_len": 33 } }""", "task.seq_len")]
    [InlineData("""{ "task": { "kind": "mad", "task": "fuzzy_in_context_recall", "vocab_size": 6 } }""", "task.vocab_size")]
    [InlineData("""{ "task": { "kind": "mad", "task": "noisy_in_context_recall", "vocab_size": 17 } }""", "task.vocab_size")]
    [InlineData("""{ "task": { "kind": "mad", "frac_noise": 1 } }""", "task.frac_noise")]
    [InlineData("""{ "task": { "kind": "mad", "task": "copying" } }""", "task.task")]
    [InlineData("""{ "task": { "kind": "selective_copying", "test": [ { "seq_len": 32 } ] } }""", "task.test[0].seq_len")]
    [InlineData("""{ "task": { "kind": "selective_copying", "train": [] } }""", "task.train")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => TaskRows.RejectedNaming(json, field);
}
