using Mnemo.IO;

namespace Mnemo.Tasks.Mad;

/// <summary>One length of selective copying and how many examples to draw for it.</summary>
public sealed record SelectiveCopyingSlice
{
    [Help("sequence length L (Mamba: 4096; CPU default 256)"), Range(4, 1 << 24)] public int SeqLen { get; init; } = 256;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
}

/// <summary>
/// Selective copying with Mamba's settings (Gu &amp; Dao 2023 §4.1.1; docs/tasks.md#selective-copying): vocabulary 16 including
/// the noise (blank) token, 16 data tokens at uniformly random positions, reproduced in order after a copy token.
/// The generator is MAD's (<see cref="SelectiveCopying"/>) with uniform placement, so of the 16 tokens 14 are data,
/// one the blank and one the copy token. Mamba trains at L = 4096; the CPU default is 256. Scored by per-position
/// accuracy over the copied tokens (and exact match), as Mamba reports.
/// </summary>
[Help("selective copying with Mamba's settings (vocab 16 with the noise token, 16 tokens at random positions)")]
public sealed record SelectiveCopyingConfig : IValidatedConfig, ITask
{
    [Help("vocabulary size V: data tokens, the blank (noise) token and the copy token (Mamba: 16)"), Range(3, 1 << 20)]
    public int VocabSize { get; init; } = 16;
    [Help("data tokens to copy (Mamba: 16)"), Range(1, 1 << 20)] public int NumTokensToCopy { get; init; } = 16;
    [Help("data token positions: uniform_positions (Mamba) or before_random_token (MAD's blank insertion)")]
    public BlankPlacement Placement { get; init; } = BlankPlacement.UniformPositions;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public SelectiveCopyingSlice[] Train { get; init; } = [new() { SeqLen = 256, NumExamples = 12_800 }];
    [Help("test slices")] public SelectiveCopyingSlice[] Test { get; init; } = [new() { SeqLen = 256, NumExamples = 1280 }];

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public TaskBatch[] TrainBatches() => Generate(Train, TrainSeed);
    public TaskBatch[] TestBatches() => Generate(Test, TestSeed);

    TaskBatch[] Generate(SelectiveCopyingSlice[] slices, int seed) =>
        slices.Select((s, i) => SelectiveCopying.Generate(VocabSize, s.SeqLen, NumTokensToCopy, Placement, s.NumExamples, seed, i))
            .ToArray();

    public IEnumerable<(string, string)> Validate() => Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems);

    IEnumerable<(string, string)> SliceProblems(SelectiveCopyingSlice s)
    {
        if (s.SeqLen <= 2 * NumTokensToCopy + 1)
            yield return ("seq_len", $"{s.SeqLen} must exceed 2·num_tokens_to_copy + 1 = {2 * NumTokensToCopy + 1}");
    }
}
