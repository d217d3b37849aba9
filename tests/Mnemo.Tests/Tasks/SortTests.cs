using Mnemo.IO;
using Mnemo.Tasks;
using Mnemo.Text;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

public class SortTests
{
    static SortConfig Task(TokenizerKind tokenizer = TokenizerKind.Bytes) => new()
    {
        Text = new TextConfig { Tokenizer = tokenizer, GeneratedSentences = 500 },
        Train = [new() { ExcerptLen = 100, SegmentLen = 8, NumExamples = 40 }],
        Test = [new() { ExcerptLen = 100, SegmentLen = 8, NumExamples = 10 }],
    };

    static IEnumerable<(long[] X, long[] Y)> Rows(TaskBatch b)
    {
        for (int i = 0; i < b.Count; i++)
            yield return (b.Inputs[(i * b.SeqLen)..((i + 1) * b.SeqLen)], b.Labels[(i * b.SeqLen)..((i + 1) * b.SeqLen)]);
    }

    /// <summary>Offsets where <paramref name="segment"/> occurs in <paramref name="excerpt"/>.</summary>
    static List<int> Occurrences(long[] excerpt, long[] segment) =>
        Enumerable.Range(0, excerpt.Length - segment.Length + 1)
            .Where(o => excerpt.AsSpan(o, segment.Length).SequenceEqual(segment)).ToList();

    [Theory]
    [InlineData(TokenizerKind.Bytes, 100, 8)]
    [InlineData(TokenizerKind.Bytes, 300, 20)]
    [InlineData(TokenizerKind.Bytes, 25, 5)]       // shortest excerpt for 5-token segments
    [InlineData(TokenizerKind.Gpt2, 120, 6)]
    public void Every_example_satisfies_the_definition(TokenizerKind tokenizer, int excerptLen, int segmentLen)
    {
        var task = Task(tokenizer);
        var slice = new SortSlice { ExcerptLen = excerptLen, SegmentLen = segmentLen, NumExamples = 40 };
        var edges = Sort.DistanceEdges(excerptLen, segmentLen);
        for (int bin = 0; bin < Sort.BinCount; bin++)
        {
            var batch = Sort.Generate(task, slice, bin, seed: 5, batchIndex: bin);
            Assert.Equal(excerptLen + 2 * segmentLen + 3, batch.SeqLen);
            int ambiguous = 0;
            foreach (var (x, y) in Rows(batch))
            {
                int l = x.Length;
                Assert.All(x, id => Assert.InRange(id, 0, task.VocabSize - 1));
                var excerpt = x[..excerptLen];
                Assert.All(excerpt, id => Assert.InRange(id, 0, task.TextVocab - 1));
                Assert.Equal(task.Separator, x[excerptLen]);
                Assert.Equal(task.Separator, x[excerptLen + 1 + segmentLen]);
                Assert.Equal(task.QueryMarker, x[^1]);
                Assert.All(y[..(l - 1)], label => Assert.Equal(TaskBatch.Ignore, label));
                Assert.True(y[^1] == task.AFirst || y[^1] == task.BFirst);

                // Both segments are in the excerpt, do not overlap, their distance is in the bin, and the label
                // names the one that starts first.
                var a = x[(excerptLen + 1)..(excerptLen + 1 + segmentLen)];
                var b = x[(excerptLen + 2 + segmentLen)..(excerptLen + 2 + 2 * segmentLen)];
                List<int> atA = Occurrences(excerpt, a), atB = Occurrences(excerpt, b);
                Assert.NotEmpty(atA);
                Assert.NotEmpty(atB);
                if (atA.Count > 1 || atB.Count > 1) { ambiguous++; continue; }
                int distance = Math.Abs(atA[0] - atB[0]);
                Assert.True(distance >= segmentLen, "segments overlap");
                Assert.InRange(distance, edges[bin], edges[bin + 1] - 1);
                Assert.Equal(atA[0] < atB[0] ? task.AFirst : task.BFirst, y[^1]);
            }
            Assert.Equal(batch.Count / 2, Rows(batch).Count(r => r.Y[^1] == task.AFirst));      // counterbalanced exactly
            Assert.True(ambiguous <= batch.Count / 10, $"{ambiguous} of {batch.Count} examples have a repeated segment");
        }
    }

    [Fact]
    public void Distance_bins_follow_book_sort()
    {
        Assert.Equal([20, 62, 83, 125, 200], Sort.DistanceEdges(250, 20));
        Assert.Equal([50, 1000, 2500, 5000, 8000], Sort.DistanceEdges(10000, 50));
        var task = Task();
        var bins = task.TestBins();
        Assert.Equal(4, bins.Count);
        Assert.Equal(task.TestBatches().Length, bins.Count);
        Assert.Equal([8.0, 25, 33, 50], bins.Select(b => b.Lo));
        Assert.All(bins, b => Assert.Equal("distance", b.Axis));
    }

    [Fact]
    public void Training_examples_mix_bins_and_both_orders()
    {
        var task = Task();
        var batch = task.TrainBatches().Single();
        Assert.Equal(20, Rows(batch).Count(r => r.Y[^1] == task.AFirst));
        Assert.Equal(20, Rows(batch).Count(r => r.Y[^1] == task.BFirst));
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_or_batch_different_examples()
    {
        var task = Task();
        var slice = task.Train[0];
        var a = Sort.Generate(task, slice, null, 3, 0);
        Assert.Equal(a.Inputs, Sort.Generate(task, slice, null, 3, 0).Inputs);
        Assert.Equal(a.Labels, Sort.Generate(task, slice, null, 3, 0).Labels);
        Assert.NotEqual(a.Inputs, Sort.Generate(task, slice, null, 4, 0).Inputs);
        Assert.NotEqual(a.Inputs, Sort.Generate(task, slice, null, 3, 1).Inputs);
        Assert.True(Rows(a).Select(r => string.Join(',', r.X[..100])).Distinct().Count() > 35, "excerpts should vary");
    }

    [Fact]
    public void The_run_config_trains_on_sort_when_the_section_is_present()
    {
        var c = RunConfig.Parse(
            """{ "task": { "kind": "sort", "train": [ { "excerpt_len": 50, "segment_len": 5, "num_examples": 4 } ] } }""",
            "run.json");
        Assert.IsType<SortConfig>(c.Task);
        Assert.Equal(260, c.ResolvedModel.VocabSize);
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
        var preset = Assert.IsType<SortConfig>(RunConfig.Load("sort-attention").Task);
        Assert.Equal(200 + 2 * 10 + 3, preset.LongestSeqLen());
    }

    [Theory]
    // L_E/4 = L_S: empty bin
    [InlineData("""{ "task": { "kind": "sort", "train": [ { "excerpt_len": 40, "segment_len": 10 } ] } }""", "task.train[0].segment_len")]
    // d up to 79: 79 + 22 > 100
    [InlineData("""{ "task": { "kind": "sort", "train": [ { "excerpt_len": 100, "segment_len": 22 } ] } }""", "task.train[0].segment_len")]
    [InlineData("""{ "task": { "kind": "sort", "test": [ { "num_examples": 7 } ] } }""", "task.test[0].num_examples")]
    [InlineData("""{ "task": { "kind": "sort", "train_seed": 4, "test_seed": 4 } }""", "task.test_seed")]
    [InlineData("""{ "task": { "kind": "sort", "test": [] } }""", "task.test")]
    [InlineData("""{ "task": { "kind": "sort", "train": [ { "excerpt_len": 4 } ] } }""", "task.train[0].excerpt_len")]
    [InlineData("""{ "model": { "positions": "learned", "max_positions": 100 }, "task": { "kind": "sort" } }""", "model.max_positions")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => TaskRows.RejectedNaming(json, field);
}
