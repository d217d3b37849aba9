using Mnemo.Tasks;
using Mnemo.Training;
using static Mnemo.Tests.Tasks.TaskRows;

namespace Mnemo.Tests.Tasks;

public class InductionHeadsTests
{
    static readonly InductionHeadsConfig Task = new();

    static TaskBatch Make(int seqLen, int n = 300) =>
        InductionHeads.Generate(Task, new InductionHeadsSlice { SeqLen = seqLen, NumExamples = n }, 5, 0);

    [Theory]
    [InlineData(3)]       // shortest: s t s
    [InlineData(16)]
    [InlineData(256)]
    [InlineData(4096)]    // test lengths beyond training
    public void Every_example_satisfies_the_definition(int seqLen)
    {
        var batch = Make(seqLen, seqLen > 1000 ? 20 : 300);
        Assert.Equal(seqLen, batch.SeqLen);
        foreach (var (x, y) in Rows(batch))
        {
            Assert.All(x, t => Assert.InRange(t, 0, Task.VocabSize - 1));
            // The special token exactly twice: once inside (followed by t), once at the end.
            var at = Enumerable.Range(0, seqLen).Where(i => x[i] == InductionHeads.Special).ToArray();
            Assert.Equal(2, at.Length);
            Assert.Equal(seqLen - 1, at[1]);
            Assert.True(at[0] <= seqLen - 3);
            // The only label, at the final position, is the token that followed the first special token.
            Assert.Equal([seqLen - 1], Scored(y));
            Assert.Equal(x[at[0] + 1], y[^1]);
        }
    }

    [Fact]
    public void Positions_and_answers_are_spread_uniformly()
    {
        const int seqLen = 34, n = 6400;   // 32 positions for the first special token, 15 answers
        var rows = Rows(Make(seqLen, n)).ToList();
        var positions = rows.GroupBy(r => Array.IndexOf(r.X, (long)InductionHeads.Special)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(32, positions.Count);
        Assert.All(positions.Values, c => Assert.InRange(c, 200 - 5 * Math.Sqrt(200), 200 + 5 * Math.Sqrt(200)));
        var answers = rows.GroupBy(r => r.Y[^1]).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Enumerable.Range(1, 15).Select(t => (long)t), answers.Keys.Order());
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_or_slice_different_examples() =>
        Deterministic((seed, slice) => InductionHeads.Generate(Task, Task.Train[0] with { NumExamples = 20 }, seed, slice));

    [Fact]
    public void The_run_config_trains_on_induction_heads()
    {
        var c = RunConfig.Parse(
            """{ "task": { "kind": "induction_heads", "test": [ { "seq_len": 256 }, { "seq_len": 2048 } ] } }""",
            "run.json");
        Assert.IsType<InductionHeadsConfig>(c.Task);
        Assert.Equal(16, c.ResolvedModel.VocabSize);
        Assert.Equal(2048, c.Task.LongestSeqLen());
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
    }

    [Theory]
    [InlineData("""{ "task": { "kind": "induction_heads", "train": [ { "seq_len": 2 } ] } }""", "task.train[0].seq_len")]
    [InlineData("""{ "task": { "kind": "induction_heads", "vocab_size": 2 } }""", "task.vocab_size")]
    [InlineData("""{ "task": { "kind": "induction_heads", "train_seed": 7, "test_seed": 7 } }""", "task.test_seed")]
    [InlineData("""{ "task": { "kind": "induction_heads", "train": [] } }""", "task.train")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => RejectedNaming(json, field);
}
