using Mnemo.IO;

namespace Mnemo.Tasks;

/// <summary>One (|A|, |B|) setting of set disjointness and how many examples to draw for it. A is always
/// presented first, so (4, 64) is "small set first" and (64, 4) "large set first".</summary>
public sealed record SetDisjointnessSlice
{
    [Help("size of the first set A (JRT's short_length; it may be the larger one)"), Range(1, 1 << 20)]
    public int ShortLength { get; init; } = 4;
    [Help("size of the second set B (JRT's long_length; it may be the smaller one)"), Range(1, 1 << 20)]
    public int LongLength { get; init; } = 16;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
}

/// <summary>
/// Set disjointness in JRT's intersect_token mode (docs/tasks.md#set-disjointness): two sets sharing exactly one token; the model
/// names it after the answer separator. Vocabulary: 0 mask, 1 BOS, 2 set separator, 3 answer separator, set
/// elements [4, V). See <see cref="SetDisjointness"/> for the sequence.
/// </summary>
[Help("set disjointness (JRT, intersect_token): name the one token two sets share (docs/tasks.md#set-disjointness)")]
public sealed record SetDisjointnessConfig : IValidatedConfig, IBinnedTask
{
    [Help("vocabulary size V: 4 special tokens, then two halves of [4, V) for the two sets"), Range(8, 1 << 20)]
    public int VocabSize { get; init; } = 256;
    [Help("times the context \"[1] A [2] B\" is repeated before the answer separator (JRT-Prompt); 1 = the plain task"), Range(1, 16)]
    public int NumPasses { get; init; } = 1;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")]
    public SetDisjointnessSlice[] Train { get; init; } =
        [new() { ShortLength = 4, LongLength = 16, NumExamples = 5000 }, new() { ShortLength = 16, LongLength = 4, NumExamples = 5000 },
         new() { ShortLength = 8, LongLength = 32, NumExamples = 5000 }, new() { ShortLength = 32, LongLength = 8, NumExamples = 5000 }];
    [Help("test slices")]
    public SetDisjointnessSlice[] Test { get; init; } =
        [new() { ShortLength = 4, LongLength = 32, NumExamples = 500 }, new() { ShortLength = 32, LongLength = 4, NumExamples = 500 },
         new() { ShortLength = 16, LongLength = 64, NumExamples = 500 }, new() { ShortLength = 64, LongLength = 16, NumExamples = 500 }];

    /// <summary>Tokens in the half of [4, V) that A is drawn from; B's half holds the rest.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int HalfA => (VocabSize - SetDisjointness.FirstElement) / 2;

    /// <summary>Tokens in the half of [4, V) that B is drawn from.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int HalfB => VocabSize - SetDisjointness.FirstElement - HalfA;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => SetDisjointness.SeqLen(this, s));
    public TaskBatch[] TrainBatches() => SetDisjointness.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => SetDisjointness.GenerateAll(this, Test, TestSeed);

    /// <summary>One bin per test slice naming its set sizes in order, so "small set first" and "large set first"
    /// (same length) stay apart in results and reports.</summary>
    public IReadOnlyList<SliceBin> TestBins() => Test.Select(s => new SliceBin(
        SetDisjointness.SeqLen(this, s), "sets", s.ShortLength, s.LongLength, $"A={s.ShortLength} B={s.LongLength}")).ToList();

    public IEnumerable<(string, string)> Validate()
    {
        foreach (var problem in Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems)) yield return problem;
    }

    IEnumerable<(string, string)> SliceProblems(SetDisjointnessSlice s)
    {
        if (s.ShortLength > HalfA)
            yield return ("short_length", $"{s.ShortLength} distinct tokens do not fit in A's half of [4, " +
                $"{VocabSize}) ({HalfA} tokens); raise vocab_size");
        if (s.LongLength > HalfB)
            yield return ("long_length", $"{s.LongLength} distinct tokens do not fit in B's half of [4, " +
                $"{VocabSize}) ({HalfB} tokens); raise vocab_size");
    }
}
