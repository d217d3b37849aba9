using Mnemo.IO;

namespace Mnemo.Tasks;

/// <summary>One length of the induction-heads task and how many examples to draw for it.</summary>
public sealed record InductionHeadsSlice
{
    [Help("sequence length L (random tokens, the special token and its successor inside, the special token last)"), Range(3, 1 << 24)]
    public int SeqLen { get; init; } = 256;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
}

/// <summary>
/// Induction heads as in Mamba §4.1.2 (docs/tasks.md#induction-heads): after "… s t … s", predict t. Token 0 is the special
/// token s; content tokens are [1, V). Train at one length (256), test at longer ones for length extrapolation.
/// See <see cref="InductionHeads"/>.
/// </summary>
[Help("induction heads (Mamba §4.1.2): after \"… s t … s\" predict t (docs/tasks.md#induction-heads)")]
public sealed record InductionHeadsConfig : IValidatedConfig, ITask
{
    [Help("vocabulary size V: the special token 0 and V − 1 content tokens"), Range(3, 1 << 20)] public int VocabSize { get; init; } = 16;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public InductionHeadsSlice[] Train { get; init; } = [new() { SeqLen = 256, NumExamples = 8000 }];
    [Help("test slices")]
    public InductionHeadsSlice[] Test { get; init; } =
        [new() { SeqLen = 256, NumExamples = 500 }, new() { SeqLen = 512, NumExamples = 500 }, new() { SeqLen = 1024, NumExamples = 500 }];

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public TaskBatch[] TrainBatches() => InductionHeads.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => InductionHeads.GenerateAll(this, Test, TestSeed);

    public IEnumerable<(string, string)> Validate() => Examples.CheckSlices(TrainSeed, TestSeed, Train, Test);
}
