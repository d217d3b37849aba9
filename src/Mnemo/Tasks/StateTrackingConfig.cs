using Mnemo.IO;

namespace Mnemo.Tasks;

/// <summary>The group whose elements a state-tracking stream composes (docs/tasks.md#state-tracking).</summary>
public enum TrackedGroup
{
    /// <summary>Z₂: bits, and the state is their parity.</summary>
    Parity,
    /// <summary>S₃: the 6 permutations of 3 items (not abelian, solvable).</summary>
    S3,
    /// <summary>S₅: the 120 permutations of 5 items (not solvable: beyond TC⁰ when composed exactly).</summary>
    S5,
}

/// <summary>One length of a state-tracking slice.</summary>
public sealed record StateTrackingSlice
{
    [Help("sequence length L (elements in each stream)"), Range(1, 1 << 24)] public int SeqLen { get; init; } = 64;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
    [Help("first scored position (0-based): earlier positions carry no label, so a slice longer than training can score " +
        "only the positions beyond the training length"), Range(0, 1 << 24)]
    public int ScoreFrom { get; init; }
}

/// <summary>
/// State tracking (docs/tasks.md#state-tracking): a stream of random elements of a group, and at every scored position the
/// product of all elements so far. Parity is the group Z₂; S₅ is the word problem that needs more than a diagonal (or
/// positive-eigenvalue) linear recurrence. See <see cref="StateTracking"/>.
/// </summary>
[Help("state tracking: the running product of random group elements (parity, S3, S5), scored at every position " +
    "(docs/tasks.md#state-tracking)")]
public sealed record StateTrackingConfig : IValidatedConfig, ITask
{
    [Help("the group: parity (Z2, bits), s3 (6 permutations) or s5 (120 permutations)")]
    public TrackedGroup Group { get; init; } = TrackedGroup.Parity;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public StateTrackingSlice[] Train { get; init; } = [new() { SeqLen = 64, NumExamples = 10_000 }];
    [Help("test slices")] public StateTrackingSlice[] Test { get; init; } = [new() { SeqLen = 64, NumExamples = 500 }];

    /// <summary>The group's elements are the tokens, inputs and answers alike.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int VocabSize => StateTracking.Order(Group);

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public TaskBatch[] TrainBatches() => StateTracking.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => StateTracking.GenerateAll(this, Test, TestSeed);

    public IEnumerable<(string, string)> Validate() =>
        Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, s => s.ScoreFrom >= s.SeqLen
            ? [("score_from", $"{s.ScoreFrom} leaves nothing to score in a sequence of {s.SeqLen}")]
            : []);
}
