using Mnemo.Tasks;
using Mnemo.Training;
using static Mnemo.Tests.Tasks.TaskRows;

namespace Mnemo.Tests.Tasks;

public class SetDisjointnessTests
{
    static readonly SetDisjointnessConfig Task = new();

    static TaskBatch Make(int a, int b, int passes = 1, int n = 200, int seed = 5, int vocab = 256) =>
        SetDisjointness.Generate(Task with { NumPasses = passes, VocabSize = vocab },
            new SetDisjointnessSlice { ShortLength = a, LongLength = b, NumExamples = n }, seed, 0);

    [Theory]
    [InlineData(4, 16, 1)]
    [InlineData(16, 4, 1)]       // large set first
    [InlineData(1, 32, 1)]
    [InlineData(32, 1, 1)]
    [InlineData(8, 32, 2)]       // JRT: the context read twice
    [InlineData(126, 126, 1)]    // both halves of [4, 256) used up
    public void Every_example_satisfies_the_definition(int a, int b, int passes)
    {
        var batch = Make(a, b, passes);
        int context = a + b + 2;
        Assert.Equal(passes * context + 1, batch.SeqLen);
        if (passes == 1) Assert.Equal(a + b + 3, batch.SeqLen);
        Assert.Equal(a, batch.NumKvPairs);
        foreach (var (x, y) in Rows(batch))
        {
            // [1] A [2] B per pass, each pass identical, then [3]; the declared sizes in the declared order.
            for (int p = 0; p < passes; p++)
            {
                Assert.Equal(SetDisjointness.Bos, x[p * context]);
                Assert.Equal(SetDisjointness.SetSeparator, x[p * context + 1 + a]);
                Assert.Equal(x[..context], x[(p * context)..((p + 1) * context)]);
            }
            Assert.Equal(SetDisjointness.AnswerSeparator, x[^1]);
            var setA = x[1..(1 + a)];
            var setB = x[(2 + a)..context];
            Assert.Equal(b, setB.Length);
            Assert.All(setA.Concat(setB), t => Assert.InRange(t, SetDisjointness.FirstElement, 255));
            Assert.Equal(a, setA.Distinct().Count());
            Assert.Equal(b, setB.Distinct().Count());

            // Exactly one shared token, and it is the only label, at the last position.
            var shared = setA.Intersect(setB).ToArray();
            Assert.Single(shared);
            Assert.Equal([x.Length - 1], Scored(y));
            Assert.Equal(shared[0], y[^1]);
        }
    }

    [Fact]
    public void Both_sets_use_the_whole_element_range_and_the_shared_token_moves_around()
    {
        var rows = Rows(Make(8, 32, n: 2000)).ToList();
        Assert.Equal(252, rows.SelectMany(r => r.X[1..9]).Distinct().Count());                    // A: any of [4, 256)
        var sharedAt = rows.Select(r => Array.IndexOf(r.X[10..42], r.Y[^1])).ToArray();
        Assert.Equal(32, sharedAt.Distinct().Count());                                          // every position of B
        var fromA = rows.Select(r => Array.IndexOf(r.X[1..9], r.Y[^1])).ToArray();
        Assert.Equal(8, fromA.Distinct().Count());                                              // every element of A
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_or_slice_different_examples() =>
        Deterministic((seed, slice) => SetDisjointness.Generate(Task, Task.Train[0], seed, slice));

    [Fact]
    public void The_run_config_trains_on_set_disjointness_and_lengths_follow_the_slices()
    {
        var c = RunConfig.Parse(
            """{ "task": { "kind": "set_disjointness", "num_passes": 2, "train": [ { "short_length": 30, "long_length": 5 } ],""" +
            """ "test": [ { "short_length": 5, "long_length": 30 } ] } }""",
            "run.json");
        var task = Assert.IsType<SetDisjointnessConfig>(c.Task);
        Assert.Equal(256, c.ResolvedModel.VocabSize);
        Assert.Equal(2 * 37 + 1, task.LongestSeqLen());
        Assert.Equal([30], task.TrainBatches().Select(b => b.NumKvPairs));
        Assert.Equal([5], task.TestBatches().Select(b => b.NumKvPairs));
        var bin = Assert.Single(task.TestBins());                                               // one bin per test batch, naming the order
        Assert.Equal((task.TestBatches()[0].SeqLen, "A=5 B=30"), (bin.SeqLen, bin.Name));
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
    }

    [Theory]
    // half of [4, 40) is 18
    [InlineData(
        """{ "task": { "kind": "set_disjointness", "vocab_size": 40, """ +
        """ "train": [ { "short_length": 19 } ], "test": [ { "long_length": 4 } ] } }""",
        "task.train[0].short_length")]
    [InlineData(
        """{ "task": { "kind": "set_disjointness", "vocab_size": 40, """ +
        """ "train": [ { "long_length": 4 } ], "test": [ { "long_length": 19 } ] } }""",
        "task.test[0].long_length")]
    [InlineData("""{ "task": { "kind": "set_disjointness", "train_seed": 3, "test_seed": 3 } }""", "task.test_seed")]
    [InlineData("""{ "task": { "kind": "set_disjointness", "num_passes": 0 } }""", "task.num_passes")]
    [InlineData("""{ "task": { "kind": "set_disjointness", "test": [] } }""", "task.test")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => RejectedNaming(json, field);
}
