using Mnemo.IO;

namespace Mnemo.Tasks;

/// <summary>Which timescale task of Khajehabdollahi, Zeraati et al. (docs/tasks.md#n-parity-and-n-dms).</summary>
public enum BitTaskKind
{
    /// <summary>N-parity: (sum of the last N bits) mod 2, bits Bernoulli(p) with p ~ U(0, 1) per sequence.</summary>
    Parity,
    /// <summary>N-DMS (delayed match-to-sample): 1 iff x[−N] == x[−1], bits Bernoulli(0.5).</summary>
    Dms,
}

/// <summary>One padded length of N-parity / N-DMS and how many examples to draw for it.</summary>
public sealed record ParityDmsSlice
{
    [Help("padded sequence length L (every stream of length M ≤ 4N + 1 is left-padded to L)"), Range(4, 1 << 24)]
    public int SeqLen { get; init; } = 33;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
}

/// <summary>
/// N-parity and N-DMS (docs/tasks.md#n-parity-and-n-dms) as tokens: bits are tokens 0 and 1, PAD is 2, and the 2-class answer is
/// the token 0 or 1 at the final position. See <see cref="ParityDms"/>.
/// </summary>
[Help("N-parity / N-DMS on a bit stream, answer at the last step (docs/tasks.md#n-parity-and-n-dms)")]
public sealed record ParityDmsConfig : IValidatedConfig, ITask
{
    [Help("parity (sum of the last N bits mod 2) or dms (last bit equals the bit N − 1 steps earlier)")]
    public BitTaskKind Variant { get; init; } = BitTaskKind.Parity;
    [Help("N: how many of the last bits the answer depends on (parity) or the match distance + 1 (dms)"), Range(1, 1 << 20)]
    public int N { get; init; } = 8;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public ParityDmsSlice[] Train { get; init; } = [new() { SeqLen = 33, NumExamples = 20_000 }];
    [Help("test slices")] public ParityDmsSlice[] Test { get; init; } = [new() { SeqLen = 33, NumExamples = 1000 }];

    /// <summary>Bits 0 and 1, and PAD.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int VocabSize => ParityDms.Pad + 1;

    /// <summary>The longest stream, 4N + 1 bits (M is uniform in [N + 2, 4N + 2)).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int MaxStreamLen => 4 * N + 1;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public TaskBatch[] TrainBatches() => ParityDms.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => ParityDms.GenerateAll(this, Test, TestSeed);

    public IEnumerable<(string, string)> Validate()
    {
        foreach (var problem in Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems)) yield return problem;
    }

    IEnumerable<(string, string)> SliceProblems(ParityDmsSlice s)
    {
        if (s.SeqLen < MaxStreamLen)
            yield return ("seq_len", $"{s.SeqLen} cannot hold the longest stream of N = {N}: 4N + 1 = {MaxStreamLen} bits");
    }
}
