using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Text;

namespace Mnemo.Tasks.LanguageModeling;

/// <summary>Windows of one length: training windows start anywhere in the training part, test windows tile the held-out
/// part from its start.</summary>
public sealed record LmSlice
{
    [Help("window length in tokens (the labels are the next tokens, so a window reads seq_len + 1 tokens)"), Range(1, 1 << 24)]
    public int SeqLen { get; init; } = 256;
    [Help("windows: training windows start at seeded random offsets of the training part; test windows are consecutive " +
        "and do not overlap, from the start of the held-out part"), Range(1, 100_000_000)]
    public int NumExamples { get; init; } = 1000;
}

/// <summary>
/// Language modelling on a text (docs/tasks.md#language-modelling): the text is cut by position into a training part and
/// a held-out tail (<see cref="ValidationFraction"/>, moved forward to the next line start), each tokenised on its own,
/// so no window and no token spans the cut. Every position is scored (next-token prediction); the test slices report
/// bits per byte and perplexity (<see cref="LanguageModelingMetric"/>), at the training length and at any longer one.
/// The vocabulary is the tokenizer's: 256 bytes or GPT-2's 50 257 ids.
/// </summary>
[Help("language modelling on a text: next-token loss at every position; bits per byte and perplexity on a held-out tail")]
public sealed record LanguageModelingConfig : IValidatedConfig, ITask
{
    [Help("tokenizer and corpus")] public TextConfig Text { get; init; } = new();
    [Help("fraction of the text held out at its end for the test slices (the cut moves forward to the next line start)"),
        Range(0.001, 0.9)]
    public double ValidationFraction { get; init; } = 0.1;
    [Help("seed of the training windows' offsets"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("training slices")] public LmSlice[] Train { get; init; } = [new() { SeqLen = 256, NumExamples = 20_000 }];
    [Help("test slices: the training length and longer ones")]
    public LmSlice[] Test { get; init; } = [new() { SeqLen = 256, NumExamples = 64 }, new() { SeqLen = 1024, NumExamples = 16 }];

    [JsonIgnore] public int VocabSize => Tokenizers.Get(Text.Tokenizer).VocabSize;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public string? DataNote() => Text.FallbackNote();
    public TaskBatch[] TrainBatches() => LanguageModeling.TrainBatches(this);
    public TaskBatch[] TestBatches() => LanguageModeling.TestBatches(this);
    public IReadOnlyList<ISliceMetric> SliceMetrics(int sliceIndex) => [new LanguageModelingMetric(Tokenizers.Get(Text.Tokenizer))];

    /// <summary>Every position is scored, so the logits of a row are L·V floats: rows per batch keep them near 16M.</summary>
    public int EvalRows(int seqLen) => (int)Math.Clamp((1L << 24) / ((long)seqLen * VocabSize), 1, 256);

    public IEnumerable<(string, string)> Validate()
    {
        if (Train.Length == 0) yield return ("train", "needs at least one slice");
        if (Test.Length == 0) yield return ("test", "needs at least one slice");
    }
}
