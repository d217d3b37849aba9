using Mnemo.Tasks;
using Mnemo.Training;
using static Mnemo.Tests.Tasks.TaskRows;

namespace Mnemo.Tests.Tasks;

public class ParityDmsTests
{
    static TaskBatch Make(BitTaskKind kind, int n, int seqLen, int count = 2000, int seed = 5) =>
        ParityDms.Generate(new ParityDmsConfig { Variant = kind, N = n }, new ParityDmsSlice { SeqLen = seqLen, NumExamples = count },
            seed, 0);

    /// <summary>The stream without its left padding.</summary>
    static long[] Bits(long[] x) => x.SkipWhile(t => t == ParityDms.Pad).ToArray();

    [Theory]
    [InlineData(BitTaskKind.Parity, 2, 9)]
    [InlineData(BitTaskKind.Parity, 8, 33)]
    [InlineData(BitTaskKind.Parity, 5, 64)]    // longer slice: more padding
    [InlineData(BitTaskKind.Dms, 2, 9)]
    [InlineData(BitTaskKind.Dms, 8, 40)]
    [InlineData(BitTaskKind.Dms, 1, 5)]        // N = 1: x[−1] == x[−1], always 1
    public void The_label_is_recomputed_from_the_inputs(BitTaskKind kind, int n, int seqLen)
    {
        var batch = Make(kind, n, seqLen);
        Assert.Equal(seqLen, batch.SeqLen);
        foreach (var (x, y) in Rows(batch))
        {
            var bits = Bits(x);
            // Left padding, then a stream of 0/1 bits of length M ∈ [N + 2, 4N + 2).
            Assert.InRange(bits.Length, n + 2, 4 * n + 1);
            Assert.All(bits, b => Assert.InRange(b, 0, 1));
            Assert.All(x[..(seqLen - bits.Length)], t => Assert.Equal(ParityDms.Pad, t));

            Assert.Equal([seqLen - 1], Scored(y));
            long expected = kind == BitTaskKind.Parity
                ? bits.TakeLast(n).Sum() % 2
                : bits[^n] == bits[^1] ? 1 : 0;
            Assert.Equal(expected, y[^1]);
        }
    }

    [Fact]
    public void Stream_lengths_are_uniform_over_n_plus_2_to_4n_plus_1()
    {
        const int n = 4;   // M ∈ {6, …, 17}: 12 values
        var lengths = Rows(Make(BitTaskKind.Dms, n, 17, 6000)).GroupBy(r => Bits(r.X).Length).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Enumerable.Range(n + 2, 3 * n), lengths.Keys.Order());
        Assert.All(lengths.Values, c => Assert.InRange(c, 500 - 5 * Math.Sqrt(500), 500 + 5 * Math.Sqrt(500)));
    }

    [Fact]
    public void Parity_streams_are_unbalanced_per_sequence_and_dms_streams_balanced()
    {
        // Parity draws p ~ U(0, 1) per sequence: the fraction of ones spreads over (0, 1), variance ≈ 1/12 plus noise.
        // DMS is Bernoulli(0.5): fractions stay near 1/2 and both labels are about equally frequent.
        static double[] OnesFraction(TaskBatch b) => Rows(b).Select(r => Bits(r.X).Average(t => (double)t)).ToArray();
        static double Variance(double[] v) => v.Select(f => (f - v.Average()) * (f - v.Average())).Average();
        var parity = OnesFraction(Make(BitTaskKind.Parity, 16, 65));
        var dms = Make(BitTaskKind.Dms, 16, 65);
        Assert.InRange(Variance(parity), 0.06, 0.11);
        Assert.InRange(Variance(OnesFraction(dms)), 0, 0.02);
        Assert.InRange(Rows(dms).Average(r => (double)r.Y[^1]), 0.45, 0.55);
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_or_slice_different_examples() =>
        Deterministic((seed, slice) => ParityDms.Generate(new ParityDmsConfig(), new ParityDmsSlice { NumExamples = 50 }, seed, slice));

    [Fact]
    public void The_run_config_trains_on_parity_or_dms()
    {
        var c = RunConfig.Parse(
            """{ "task": { "kind": "parity_dms", "variant": "dms", "n": 3, """ +
            """ "train": [ { "seq_len": 13 } ], "test": [ { "seq_len": 20 } ] } }""",
            "run.json");
        var task = Assert.IsType<ParityDmsConfig>(c.Task);
        Assert.Equal(BitTaskKind.Dms, task.Variant);
        Assert.Equal(3, c.ResolvedModel.VocabSize);
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
    }

    [Theory]
    [InlineData(
        """{ "task": { "kind": "parity_dms", "n": 8, "train": [ { "seq_len": 32 } ] } }""",
        "task.train[0].seq_len")]   // 4N + 1 = 33
    [InlineData("""{ "task": { "kind": "parity_dms", "n": 2, "test": [ { "seq_len": 8 } ] } }""", "task.test[0].seq_len")]
    [InlineData("""{ "task": { "kind": "parity_dms", "n": 0 } }""", "task.n")]
    [InlineData("""{ "task": { "kind": "parity_dms", "variant": "xor" } }""", "task.variant")]
    [InlineData("""{ "task": { "kind": "parity_dms", "train_seed": 2 } }""", "task.test_seed")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => RejectedNaming(json, field);
}
