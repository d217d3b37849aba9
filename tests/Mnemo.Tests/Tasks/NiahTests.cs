using Mnemo.IO;
using Mnemo.Tasks;
using Mnemo.Text;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

public class NiahTests
{
    static NiahConfig Task(int variant, TokenizerKind tokenizer = TokenizerKind.Bytes) => new()
    {
        Variant = variant,
        Text = new TextConfig { Tokenizer = tokenizer, GeneratedSentences = 500 },
        Train = [new() { SeqLen = 160, NumExamples = 60 }],
        Test = [new() { SeqLen = 160, NumExamples = 10, Depths = DepthKind.Even, DepthBins = 4 }],
    };

    static IEnumerable<(long[] X, long[] Y)> Rows(TaskBatch b)
    {
        for (int i = 0; i < b.Count; i++)
            yield return (b.Inputs[(i * b.SeqLen)..((i + 1) * b.SeqLen)], b.Labels[(i * b.SeqLen)..((i + 1) * b.SeqLen)]);
    }

    [Theory]
    [InlineData(1, TokenizerKind.Bytes, 160)]
    [InlineData(2, TokenizerKind.Bytes, 160)]
    [InlineData(3, TokenizerKind.Bytes, 160)]
    [InlineData(3, TokenizerKind.Bytes, 68)]      // shortest length with a 32-symbol value: one haystack token
    [InlineData(2, TokenizerKind.Gpt2, 100)]
    public void Every_example_satisfies_the_definition(int variant, TokenizerKind tokenizer, int seqLen)
    {
        var task = Task(variant, tokenizer);
        int n = task.ValueLength, t = task.TextVocab;
        Assert.Equal(variant == 3 ? 32 : 7, n);
        Assert.Equal(t + 2 + task.NumKeys + task.ValueSymbols, task.VocabSize);
        var batch = Niah.Generate(task, new NiahSlice { SeqLen = seqLen, NumExamples = 40 }, 0, seed: 5, batchIndex: 0);
        Assert.Equal(40, batch.Count);
        foreach (var (x, y) in Rows(batch))
        {
            Assert.All(x, id => Assert.InRange(id, 0, task.VocabSize - 1));
            // Exactly one needle and one query; the key appears in both and nowhere else.
            Assert.Single(x, id => id == task.NeedleMarker);
            Assert.Single(x, id => id == task.QueryMarker);
            int needle = Array.IndexOf(x, (long)task.NeedleMarker), query = Array.IndexOf(x, (long)task.QueryMarker);
            Assert.Equal(seqLen - n - 1, query);
            long key = x[needle + 1];
            Assert.InRange(key, task.FirstKey, task.FirstValue - 1);
            Assert.Equal(key, x[query + 1]);
            Assert.Equal(2, x.Count(id => id == key));

            // Labels are the needle's value, at the last n positions, teacher forced.
            var value = x[(needle + 2)..(needle + 2 + n)];
            Assert.All(value, v => Assert.InRange(v, task.FirstValue, task.VocabSize - 1));
            Assert.All(y[..(seqLen - n)], l => Assert.Equal(TaskBatch.Ignore, l));
            Assert.Equal(value, y[(seqLen - n)..]);
            Assert.Equal(value[..(n - 1)], x[(seqLen - n + 1)..]);

            // The haystack is text: no marker, key or value symbol, and the needle sits between sentences.
            var haystack = x[..needle].Concat(x[(needle + 2 + n)..query]).ToArray();
            Assert.Equal(Passkey.HaystackLength(seqLen, n), haystack.Length);
            Assert.All(haystack, id => Assert.InRange(id, 0, t - 1));
            if (needle > 0 && needle < haystack.Length)
                Assert.StartsWith(" ", task.Text.Book().Tokenizer.Decode(haystack[needle..].Select(id => (int)id)));
        }
    }

    [Fact]
    public void Variants_use_noise_or_text_haystacks()
    {
        static string FirstHaystack(NiahConfig task) => task.Text.Book().Tokenizer.Decode(
            Niah.Generate(task, new NiahSlice { SeqLen = 400, NumExamples = 1, Depths = DepthKind.Even }, 0, 1, 0)
                .Inputs.Take(100).Select(id => (int)id).Where(id => id < 256));
        Assert.Contains("The sky is blue.", FirstHaystack(Task(1)));
        Assert.DoesNotContain("The sky is blue.", FirstHaystack(Task(2)));
    }

    [Fact]
    public void Test_slices_split_into_depth_bins_spread_evenly_from_start_to_end()
    {
        var task = Task(1) with { Test = [new() { SeqLen = 400, NumExamples = 10, Depths = DepthKind.Even, DepthBins = 4 }] };
        var batches = task.TestBatches();
        var bins = task.TestBins();
        Assert.Equal(4, batches.Length);
        Assert.Equal([0, 0.25, 0.5, 0.75], bins.Select(b => b.Lo));
        int h = Passkey.HaystackLength(400, task.ValueLength);
        var depths = batches.SelectMany(b => Rows(b).Select(r => (double)Array.IndexOf(r.X, (long)task.NeedleMarker) / h)).ToArray();
        Assert.Equal(depths.Order(), depths);                                   // depth grows with bin and index
        for (int b = 0; b < 4; b++)
            // within a sentence of the bin
            Assert.All(depths[(b * 10)..((b + 1) * 10)], d => Assert.InRange(d, bins[b].Lo - 0.06, bins[b].Hi + 0.06));
        Assert.True(depths.Min() < 0.05 && depths.Max() > 0.95);
    }

    [Fact]
    public void Uniform_training_depths_cover_the_haystack()
    {
        var task = Task(2);
        var batch = Niah.Generate(task, new NiahSlice { SeqLen = 300, NumExamples = 400 }, 0, 3, 0);
        int h = Passkey.HaystackLength(300, task.ValueLength);
        var hits = new int[5];
        foreach (var (x, _) in Rows(batch)) hits[Math.Min(4, 5 * Array.IndexOf(x, (long)task.NeedleMarker) / h)]++;
        Assert.All(hits, c => Assert.InRange(c, 40, 130));
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_or_batch_different_examples()
    {
        var task = Task(3);
        var slice = task.Train[0];
        var a = Niah.Generate(task, slice, 0, 3, 0);
        Assert.Equal(a.Inputs, Niah.Generate(task, slice, 0, 3, 0).Inputs);
        Assert.Equal(a.Labels, Niah.Generate(task, slice, 0, 3, 0).Labels);
        Assert.NotEqual(a.Inputs, Niah.Generate(task, slice, 0, 4, 0).Inputs);
        Assert.NotEqual(a.Inputs, Niah.Generate(task, slice, 0, 3, 1).Inputs);
        Assert.Equal(60, Rows(a).Select(r => string.Join(',', r.Y[^32..])).Distinct().Count());
    }

    [Fact]
    public void The_run_config_trains_on_niah_when_the_section_is_present()
    {
        var c = RunConfig.Parse(
            """{ "task": { "kind": "niah", "variant": 3, "train": [ { "seq_len": 80, "num_examples": 4 } ] } }""",
            "run.json");
        var niah = Assert.IsType<NiahConfig>(c.Task);
        Assert.Equal(256 + 2 + 16 + 16, c.ResolvedModel.VocabSize);
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
        Assert.Equal("niah", c.TaskKind);
        Assert.Equal(5, niah.TestBins().Count);
        var preset = RunConfig.Load("niah-gated-delta-net");
        var task = Assert.IsType<NiahConfig>(preset.Task);
        Assert.Equal(15, task.TestBins().Count);
    }

    [Theory]
    // a 32-symbol value needs 68
    [InlineData("""{ "task": { "kind": "niah", "variant": 3, "train": [ { "seq_len": 67 } ] } }""", "task.train[0].seq_len")]
    [InlineData("""{ "task": { "kind": "niah", "value_len": 10, "test": [ { "seq_len": 23 } ] } }""", "task.test[0].seq_len")]
    [InlineData("""{ "task": { "kind": "niah", "variant": 4 } }""", "task.variant")]
    [InlineData("""{ "task": { "kind": "niah", "train_seed": 4, "test_seed": 4 } }""", "task.test_seed")]
    [InlineData("""{ "task": { "kind": "niah", "test": [ { "depth_bins": 0 } ] } }""", "task.test[0].depth_bins")]
    [InlineData("""{ "task": { "kind": "niah", "train": [] } }""", "task.train")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => TaskRows.RejectedNaming(json, field);
}
