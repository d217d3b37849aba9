using Mnemo.IO;
using Mnemo.Tasks;
using Mnemo.Tasks.LanguageModeling;
using Mnemo.Tests.Training;
using Mnemo.Text;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

/// <summary>The language-modelling task: the split, the windows, the metric and a tiny training run.</summary>
[Collection(TorchCollection.Name)]
public class LanguageModelingTests
{
    /// <summary>Numbered lines, so every window's place in the text can be found.</summary>
    static string Lines(int n) => string.Concat(Enumerable.Range(0, n).Select(i => $"line {i:D4} of the text.\n"));

    static (LanguageModelingConfig Config, string File) WithFile(Tmp.Dir dir, string text, LmSlice[] train, LmSlice[] test,
        double fraction = 0.2)
    {
        var file = Path.Combine(dir.Path, "book.txt");
        File.WriteAllText(file, text);
        return (new LanguageModelingConfig
        {
            Text = new TextConfig { Corpus = file },
            ValidationFraction = fraction,
            Train = train,
            Test = test,
        }, file);
    }

    [Fact]
    public void The_held_out_tail_starts_at_a_line_and_the_two_parts_make_the_text()
    {
        string text = Lines(100);
        var split = LanguageModeling.Split("lines", text, 0.25, ByteTokenizer.Instance);
        Assert.Equal('\n', text[split.HeldOutStart - 1]);
        Assert.InRange(split.HeldOutStart, (int)(0.75 * text.Length), (int)(0.75 * text.Length) + 24);
        Assert.Equal(text, ByteTokenizer.Instance.Decode(split.Train) + ByteTokenizer.Instance.Decode(split.HeldOut));
        var e = Assert.Throws<ConfigException>(() => LanguageModeling.Split("one letter", "a", 0.5, ByteTokenizer.Instance));
        Assert.Contains("validation_fraction", e.Message);
    }

    [Fact]
    public void Training_windows_score_every_next_token_inside_the_training_part()
    {
        using var dir = new Tmp.Dir();
        var (c, _) = WithFile(dir, Lines(200), [new() { SeqLen = 40, NumExamples = 50 }], [new() { SeqLen = 40, NumExamples = 4 }]);
        var split = LanguageModeling.Split(c);
        string train = ByteTokenizer.Instance.Decode(split.Train);
        var batch = Assert.Single(c.TrainBatches());
        Assert.Equal((40, 50), (batch.SeqLen, batch.Count));
        for (int i = 0; i < batch.Count; i++)
        {
            var input = batch.Inputs.AsSpan(i * 40, 40).ToArray();
            var label = batch.Labels.AsSpan(i * 40, 40).ToArray();
            Assert.Equal(input[1..], label[..^1]);                            // the label of t is the input of t + 1
            Assert.DoesNotContain(TaskBatch.Ignore, label);                   // every position is scored
            string window = ByteTokenizer.Instance.Decode([.. input.Select(x => (int)x), (int)label[^1]]);
            Assert.Contains(window, train);                                   // never crosses into the held-out part
        }
        Assert.Equal(batch.Inputs, c.TrainBatches()[0].Inputs);               // seeded
        Assert.NotEqual(batch.Inputs, (c with { TrainSeed = 2 }).TrainBatches()[0].Inputs);
    }

    [Fact]
    public void Test_windows_tile_the_held_out_part_from_its_start_at_every_length()
    {
        using var dir = new Tmp.Dir();
        var (c, _) = WithFile(dir, Lines(200), [new() { SeqLen = 16, NumExamples = 4 }],
            [new() { SeqLen = 16, NumExamples = 5 }, new() { SeqLen = 64, NumExamples = 2 }]);
        var split = LanguageModeling.Split(c);
        var slices = c.TestBatches();
        Assert.Equal([16, 64], slices.Select(s => s.SeqLen));
        foreach (var s in slices)
            for (int j = 0; j < s.Count; j++)
            {
                IEnumerable<long> HeldOut(int from) => split.HeldOut.Skip(from).Take(s.SeqLen).Select(x => (long)x);
                Assert.Equal(HeldOut(j * s.SeqLen), s.Inputs.Skip(j * s.SeqLen).Take(s.SeqLen));
                Assert.Equal(HeldOut(j * s.SeqLen + 1), s.Labels.Skip(j * s.SeqLen).Take(s.SeqLen));
            }
    }

    [Fact]
    public void Too_little_text_for_the_windows_is_one_error_naming_the_slice()
    {
        using var dir = new Tmp.Dir();
        var (c, _) = WithFile(dir, Lines(50), [new() { SeqLen = 16, NumExamples = 4 }], [new() { SeqLen = 100, NumExamples = 50 }]);
        var e = Assert.Throws<ConfigException>(() => c.TestBatches());
        Assert.Contains("task.test[0].num_examples", e.Message);
        Assert.Contains("held-out", e.Message);
        var tooLong = c with { Train = [new() { SeqLen = 5000, NumExamples = 1 }] };
        Assert.Contains("task.train[0].seq_len", Assert.Throws<ConfigException>(() => tooLong.TrainBatches()).Message);
    }

    [Fact]
    public void Bits_per_byte_and_perplexity_of_a_uniform_byte_model_are_8_and_256()
    {
        var metric = new LanguageModelingMetric(ByteTokenizer.Instance);
        long[] labels = [104, 105, TaskBatch.Ignore, 33];
        float lp = (float)Math.Log(1.0 / 256);
        metric.AddExample(0, labels, labels, [lp, lp, float.NaN, lp]);
        var values = metric.Values().ToDictionary();
        Assert.Equal(8, values[LanguageModelingMetric.BitsPerByte], 5);
        Assert.Equal(256, values[LanguageModelingMetric.Perplexity], 3);
    }

    [Fact]
    public void With_bpe_the_bytes_are_those_of_the_decoded_text()
    {
        var gpt2 = Tokenizers.Get(TokenizerKind.Gpt2);
        string text = " Emma Woodhouse, handsome, clever, and rich — naïve?";
        var ids = gpt2.Encode(text);
        var metric = new LanguageModelingMetric(gpt2);
        metric.AddExample(0, ids.Select(i => (long)i).ToArray(), new long[ids.Length], Enumerable.Repeat(-2f, ids.Length).ToArray());
        var values = metric.Values().ToDictionary();
        int bytes = System.Text.Encoding.UTF8.GetByteCount(text);
        Assert.Equal(2.0 * ids.Length / (bytes * Math.Log(2)), values[LanguageModelingMetric.BitsPerByte], 6);
        Assert.Equal(Math.Exp(2), values[LanguageModelingMetric.Perplexity], 6);
    }

    [Fact]
    public void A_tiny_model_trains_and_reports_bits_per_byte_at_each_length()
    {
        using var dir = new Tmp.Dir();
        var (task, _) = WithFile(dir, Lines(300), [new() { SeqLen = 32, NumExamples = 64 }],
            [new() { SeqLen = 32, NumExamples = 8 }, new() { SeqLen = 64, NumExamples = 4 }]);
        var config = TrainerTests.Tiny(steps: 4) with { Task = task };
        config = config with { Model = config.Model with { VocabSize = 0 } };
        Assert.Equal("lm", config.TaskKind);
        RunConfig.Parse(config.ToJson(), "tiny");
        var outcome = new Trainer(config, Path.Combine(dir.Path, "run")).Run(resume: false);
        Assert.Equal(4, outcome.Steps);
        var slices = outcome.LastEval!.Slices;
        Assert.Equal([32, 64], slices.Select(s => s.SeqLen));
        Assert.All(slices, s => Assert.InRange(s.Metrics![LanguageModelingMetric.BitsPerByte], 0.5, 12));
        Assert.All(slices, s => Assert.InRange(s.Metrics![LanguageModelingMetric.Perplexity], 1, 300));
    }
}
