using Mnemo.IO;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

public class PasskeyTests
{
    static PasskeyConfig Task(HaystackKind haystack = HaystackKind.Repeat, int digits = 5) => new()
    {
        Haystack = haystack,
        NumDigits = digits,
        Train = [new() { SeqLen = 64, NumExamples = 300 }],
        Test = [new() { SeqLen = 64, NumExamples = 50, Depths = DepthKind.Even }],
    };

    static IEnumerable<(long[] X, long[] Y)> Rows(TaskBatch b)
    {
        for (int i = 0; i < b.Count; i++)
            yield return (b.Inputs[(i * b.SeqLen)..((i + 1) * b.SeqLen)], b.Labels[(i * b.SeqLen)..((i + 1) * b.SeqLen)]);
    }

    static int NeedleAt(long[] x) => Array.IndexOf(x, (long)Passkey.NeedleMarker);

    [Theory]
    [InlineData(HaystackKind.Repeat, 5, 64)]
    [InlineData(HaystackKind.Random, 5, 64)]
    [InlineData(HaystackKind.Repeat, 3, 14)]     // shortest length that fits: haystack of one token
    [InlineData(HaystackKind.Repeat, 5, 257)]    // odd length, several sentences
    [InlineData(HaystackKind.Random, 7, 1024)]
    public void Every_example_satisfies_the_definition(HaystackKind haystack, int digits, int seqLen)
    {
        var task = Task(haystack, digits);
        var batch = Passkey.Generate(task, new PasskeySlice { SeqLen = seqLen, NumExamples = 100 }, seed: 5, sliceIndex: 0);
        int n = digits, firstFiller = Passkey.FirstKey + task.NumKeys;
        Assert.Equal(100, batch.Count);
        Assert.Equal(seqLen, batch.SeqLen);
        foreach (var (x, y) in Rows(batch))
        {
            // Labels only at the last n positions, and they are digits.
            Assert.All(y[..(seqLen - n)], label => Assert.Equal(TaskBatch.Ignore, label));
            Assert.All(y[(seqLen - n)..], label => Assert.InRange(label, 0, Passkey.Digits - 1));

            // Needle and query markers occur exactly once; the key twice (needle and query), nowhere else.
            Assert.Single(x, t => t == Passkey.NeedleMarker);
            Assert.Single(x, t => t == Passkey.QueryMarker);
            int needle = NeedleAt(x), query = Array.IndexOf(x, (long)Passkey.QueryMarker);
            long key = x[needle + 1];
            Assert.InRange(key, Passkey.FirstKey, firstFiller - 1);
            Assert.Equal(2, x.Count(t => t == key));
            Assert.Equal(query, seqLen - n - 1);
            Assert.Equal(key, x[query + 1]);

            // The answer is the needle's digits: teacher-forced inputs d1…d(n−1), labels d1…dn.
            var digitsInNeedle = x[(needle + 2)..(needle + 2 + n)];
            Assert.Equal(digitsInNeedle, y[(seqLen - n)..]);
            Assert.Equal(digitsInNeedle[..(n - 1)], x[(seqLen - n + 1)..]);

            // Everything else is filler, never a digit, marker or key.
            var filler = x.Where((_, i) => i < needle || (i >= needle + 2 + n && i < query)).ToArray();
            Assert.Equal(Passkey.HaystackLength(task, seqLen), filler.Length);
            Assert.All(filler, t => Assert.InRange(t, firstFiller, task.VocabSize - 1));
            if (haystack == HaystackKind.Repeat)
            {
                // One sentence repeated; the needle sits on a sentence boundary, so the pattern runs on across it.
                Assert.Equal(0, needle % task.SentenceLen);
                for (int i = task.SentenceLen; i < filler.Length; i++) Assert.Equal(filler[i - task.SentenceLen], filler[i]);
            }
        }
        if (haystack == HaystackKind.Random) Assert.True(batch.Inputs.Distinct().Count() > task.FillerTokens / 2);
    }

    [Fact]
    public void Uniform_depths_cover_every_slot_about_equally()
    {
        var task = Task();
        const int seqLen = 128, count = 4000;
        int slots = Passkey.Slots(task, seqLen);
        var batch = Passkey.Generate(task, new PasskeySlice { SeqLen = seqLen, NumExamples = count }, 9, 0);
        var hits = new int[slots];
        foreach (var (x, _) in Rows(batch)) hits[NeedleAt(x) / task.SentenceLen]++;
        double expected = (double)count / slots;
        Assert.All(hits, h => Assert.InRange(h, expected - 5 * Math.Sqrt(expected), expected + 5 * Math.Sqrt(expected)));
    }

    [Fact]
    public void Even_depths_are_spread_in_order_from_start_to_end()
    {
        var task = Task(HaystackKind.Random);
        const int seqLen = 256, count = 40;
        var batch = Passkey.Generate(task, new PasskeySlice { SeqLen = seqLen, NumExamples = count, Depths = DepthKind.Even }, 9, 0);
        var at = Rows(batch).Select(r => NeedleAt(r.X)).ToArray();
        Assert.Equal(at.Order(), at);                                 // depth grows with the example index
        int h = Passkey.HaystackLength(task, seqLen);
        for (int i = 0; i < count; i++)
            Assert.InRange(at[i], (int)((i + 0.5) / count * (h + 1)) - 1, (int)((i + 0.5) / count * (h + 1)) + 1);
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_or_slice_different_examples()
    {
        var task = Task();
        var slice = task.Train[0];
        var a = Passkey.Generate(task, slice, 3, 0);
        var b = Passkey.Generate(task, slice, 3, 0);
        Assert.Equal(a.Inputs, b.Inputs);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Inputs, Passkey.Generate(task, slice, 4, 0).Inputs);
        Assert.NotEqual(a.Inputs, Passkey.Generate(task, slice, 3, 1).Inputs);
    }

    [Fact]
    public void Passkeys_vary_across_examples()
    {
        var task = Task();
        var batch = Passkey.Generate(task, task.Train[0], 1, 0);
        var keys = Rows(batch).Select(r => string.Join(',', r.Y[^task.NumDigits..])).ToHashSet();
        Assert.True(keys.Count > 290, $"only {keys.Count} distinct passkeys in 300 examples");
    }

    [Fact]
    public void The_run_config_trains_on_passkey_when_the_section_is_present()
    {
        var c = RunConfig.Parse(
            """{ "task": { "kind": "passkey", "vocab_size": 40, "train": [ { "seq_len": 32, "num_examples": 4 } ] } }""",
            "run.json");
        Assert.IsType<PasskeyConfig>(c.Task);
        Assert.Equal(40, c.ResolvedModel.VocabSize);
        var again = RunConfig.Parse(c.ToJson(), "round trip");
        Assert.Equal(c.ToJson(), again.ToJson());
        Assert.IsType<MqarConfig>(RunConfig.Parse("{}", "run.json").Task);
        Assert.DoesNotContain("passkey", RunConfig.Parse("{}", "run.json").ToJson());   // MQAR configs read as before
    }

    [Theory]
    [InlineData(
        """{ "task": { "kind": "passkey", "train": [ { "seq_len": 13 } ] } }""",
        "task.train[0].seq_len")]          // 5 digits need 14
    [InlineData("""{ "task": { "kind": "passkey", "num_digits": 8, "test": [ { "seq_len": 19 } ] } }""", "task.test[0].seq_len")]
    [InlineData(
        """{ "task": { "kind": "passkey", "vocab_size": 20, "num_keys": 7 } }""",
        "task.vocab_size")]              // one filler token
    [InlineData("""{ "task": { "kind": "passkey", "train_seed": 4, "test_seed": 4 } }""", "task.test_seed")]
    [InlineData("""{ "task": { "kind": "passkey", "haystack": "essays" } }""", "task.haystack")]
    [InlineData("""{ "task": { "kind": "passkey", "num_digits": 0 } }""", "task.num_digits")]
    [InlineData("""{ "task": { "kind": "passkey", "train": [] } }""", "task.train")]
    [InlineData("""{ "model": { "vocab_size": 32 }, "task": { "kind": "passkey" } }""", "model.vocab_size")]
    [InlineData(
        """{ "model": { "positions": "learned", "max_positions": 100 }, "task": { "kind": "passkey", "test": [ { "seq_len": 256 } ] } }""",
        "model.max_positions")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => TaskRows.RejectedNaming(json, field);
}
