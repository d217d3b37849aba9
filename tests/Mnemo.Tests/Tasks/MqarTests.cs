using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Tasks;

namespace Mnemo.Tests.Tasks;

public class MqarTests
{
    static MqarConfig Task(bool randomFiller = true, int passes = 1, int v = 128) => new()
    {
        VocabSize = v,
        NumPasses = passes,
        RandomNonQueries = randomFiller,
        Train = [new() { SeqLen = 64, NumKvPairs = 8, NumExamples = 200 }],
        Test = [new() { SeqLen = 64, NumKvPairs = 8, NumExamples = 50 }],
    };

    static IEnumerable<(long[] X, long[] Y)> Rows(TaskBatch b)
    {
        for (int i = 0; i < b.Count; i++)
            yield return (b.Inputs[(i * b.SeqLen)..((i + 1) * b.SeqLen)], b.Labels[(i * b.SeqLen)..((i + 1) * b.SeqLen)]);
    }

    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    public void Every_example_satisfies_the_definition(bool randomFiller, int passes)
    {
        var task = Task(randomFiller, passes);
        var slice = task.Train[0];
        var batch = Mqar.Generate(task, slice, seed: 5, sliceIndex: 0);
        int k = slice.NumKvPairs, v = task.VocabSize, context = 2 * k * passes;
        Assert.Equal(slice.NumExamples, batch.Count);
        foreach (var (x, y) in Rows(batch))
        {
            // Context block: k1 v1 k2 v2 …, keys in [1, V/2), values in [V/2, V), each set distinct, tiled per pass.
            var keys = Enumerable.Range(0, k).Select(i => x[2 * i]).ToArray();
            var values = Enumerable.Range(0, k).Select(i => x[2 * i + 1]).ToArray();
            Assert.All(keys, key => Assert.InRange(key, 1, v / 2 - 1));
            Assert.All(values, val => Assert.InRange(val, v / 2, v - 1));
            Assert.Equal(k, keys.Distinct().Count());
            Assert.Equal(k, values.Distinct().Count());
            for (int p = 1; p < passes; p++) Assert.Equal(x[..(2 * k)], x[(p * 2 * k)..((p + 1) * 2 * k)]);
            Assert.All(y[..context], label => Assert.Equal(Mqar.Ignore, label));

            // Exactly K labels, one per key, at even offsets of the query region, each the value bound to its key.
            var labelled = Enumerable.Range(0, x.Length).Where(i => y[i] != Mqar.Ignore).ToArray();
            Assert.Equal(k, labelled.Length);
            Assert.All(labelled, i => Assert.Equal(0, (i - context) % 2));
            Assert.Equal(keys.Order(), labelled.Select(i => x[i]).Order());
            foreach (int i in labelled) Assert.Equal(values[Array.IndexOf(keys, x[i])], y[i]);

            // Filler: zero, or uniform tokens in [0, V).
            var filler = Enumerable.Range(context, x.Length - context).Where(i => y[i] == Mqar.Ignore).Select(i => x[i]).ToArray();
            if (randomFiller) Assert.All(filler, t => Assert.InRange(t, 0, v - 1));
            else Assert.All(filler, t => Assert.Equal(0, t));
        }
        if (randomFiller) Assert.Contains(batch.Inputs, t => t > 0 && t < v); // filler is actually random
    }

    [Theory]
    [InlineData(2, 48, 8)]    // 2·K·passes + 2·K = L exactly: every query slot is taken
    [InlineData(3, 64, 8)]
    [InlineData(4, 80, 8)]
    public void Tiled_blocks_fit_exactly_and_queries_fill_the_rest(int passes, int seqLen, int k)
    {
        var slice = new MqarSlice { SeqLen = seqLen, NumKvPairs = k, NumExamples = 50 };
        var task = Task(randomFiller: false, passes) with { Train = [slice], Test = [slice] };
        Assert.Empty(task.Validate());
        int context = 2 * k * passes;
        foreach (var (x, y) in Rows(Mqar.Generate(task, task.Train[0], 7, 0)))
        {
            for (int p = 1; p < passes; p++) Assert.Equal(x[..(2 * k)], x[(p * 2 * k)..((p + 1) * 2 * k)]);
            // The K queries take all K slots after the tiled block: every even offset holds a key, labelled with its value.
            var labelled = Enumerable.Range(0, seqLen).Where(i => y[i] != Mqar.Ignore).ToArray();
            Assert.Equal(Enumerable.Range(0, k).Select(g => context + 2 * g), labelled);
            foreach (int i in labelled)
            {
                int pair = Enumerable.Range(0, k).Single(j => x[2 * j] == x[i]);
                Assert.Equal(x[2 * pair + 1], y[i]);
            }
            Assert.All(Enumerable.Range(0, k), g => Assert.Equal(0, x[context + 2 * g + 1]));   // filler stays 0
        }
    }

    [Theory]
    [InlineData(2, 64, 11, "task.train[0].num_kv_pairs")]   // 2·11·2 + 22 = 66 > 64
    [InlineData(3, 64, 9, "task.train[0].num_kv_pairs")]    // 2·9·3 + 18 = 72 > 64
    [InlineData(0, 64, 4, "task.num_passes")]
    [InlineData(17, 64, 1, "task.num_passes")]
    public void Passes_that_leave_no_room_for_the_queries_are_rejected(int passes, int seqLen, int pairs, string field)
    {
        string json = $$"""{ "task": { "kind": "mqar", "vocab_size": 512, "num_passes": {{passes}}, "train": [""" +
            $$""" { "seq_len": {{seqLen}}, "num_kv_pairs": {{pairs}} } ] } }""";
        var e = Assert.Throws<ConfigException>(() => Mnemo.Training.RunConfig.Parse(json, "t.json"));
        Assert.Contains($"\"{field}\"", e.Message);
        // One pair fewer fits.
        if (field.EndsWith("num_kv_pairs"))
            Mnemo.Training.RunConfig.Parse(json.Replace($"\"num_kv_pairs\": {pairs}", $"\"num_kv_pairs\": {pairs - 1}"), "t.json");
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_different_examples()
    {
        var task = Task();
        var a = Mqar.Generate(task, task.Train[0], 3, 0);
        var b = Mqar.Generate(task, task.Train[0], 3, 0);
        var c = Mqar.Generate(task, task.Train[0], 4, 0);
        Assert.Equal(a.Inputs, b.Inputs);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Inputs, c.Inputs);
    }

    [Fact]
    public void Train_and_test_sets_share_no_example()
    {
        var task = Task() with
        {
            Train = [new() { SeqLen = 64, NumKvPairs = 8, NumExamples = 2000 }],
            Test = [new() { SeqLen = 64, NumKvPairs = 8, NumExamples = 500 }],
        };
        var train = Mqar.Generate(task, task.Train[0], task.TrainSeed, 0);
        var test = Mqar.Generate(task, task.Test[0], task.TestSeed, 0);
        var seen = Rows(train).Select(r => string.Join(',', r.X)).ToHashSet();
        Assert.DoesNotContain(Rows(test), r => seen.Contains(string.Join(',', r.X)));
    }

    [Fact]
    public void Query_gaps_follow_the_power_law()
    {
        // p(g) ∝ a·g^(a−1) with a = 0.01 is close to 1/g: slot 0 should be drawn about space^… times more often
        // than the last slot. Check the ratio of single-draw frequencies against the exact probabilities.
        const int space = 20, draws = 40_000;
        var rng = new Random(11);
        var counts = new int[space];
        for (int i = 0; i < draws; i++) counts[Mqar.SamplePowerLawGaps(rng, space, 1, 0.01)[0]]++;
        double norm = Enumerable.Range(1, space).Sum(g => Math.Pow(g, -0.99));
        for (int s = 0; s < space; s++)
        {
            double expected = draws * Math.Pow(s + 1, -0.99) / norm;
            Assert.InRange(counts[s], expected - 5 * Math.Sqrt(expected), expected + 5 * Math.Sqrt(expected));
        }
    }

    [Fact]
    public void Gaps_and_samples_are_distinct_and_in_range()
    {
        var rng = new Random(1);
        for (int trial = 0; trial < 200; trial++)
        {
            var gaps = Mqar.SamplePowerLawGaps(rng, 10, 10, 0.01);
            Assert.Equal(Enumerable.Range(0, 10), gaps.Order());
            var keys = Mqar.SampleDistinct(rng, 1, 9, 8);
            Assert.Equal(Enumerable.Range(1, 8), keys.Order());
        }
    }

    [Theory]
    [InlineData(63, 4, "task.train[0].seq_len")]        // odd length
    [InlineData(600, 4, "task.train[0].seq_len")]       // L ≥ V
    [InlineData(64, 17, "task.train[0].num_kv_pairs")]  // 4K > L
    public void Invalid_slices_are_rejected_naming_the_field(int seqLen, int pairs, string field)
    {
        string json =
            $$"""{ "task": { "kind": "mqar", "vocab_size": 512, "train": [ { "seq_len": {{seqLen}}, "num_kv_pairs": {{pairs}} } ] } }""";
        var e = Assert.Throws<ConfigException>(() => Mnemo.Training.RunConfig.Parse(json, "t.json"));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void Accuracy_averages_per_example_then_over_examples()
    {
        var acc = new RecallAccuracy();
        acc.AddExample(1, 2);  // 0.5
        acc.AddExample(4, 4);  // 1.0
        acc.AddExample(0, 0);  // nothing scored: ignored
        Assert.Equal(0.75, acc.Value, 12);
        Assert.Equal(2, acc.Examples);
    }
}
