using Mnemo.IO;

namespace Mnemo.Tasks;

/// <summary>One (length, pairs) setting of MQAR and how many examples to draw for it.</summary>
public sealed record MqarSlice : IValidatedConfig
{
    [Help("sequence length L (even)"), Range(4, 1 << 24)] public int SeqLen { get; init; } = 64;
    [Help("number of key-value pairs K"), Range(1, 1 << 20)] public int NumKvPairs { get; init; } = 4;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;

    public IEnumerable<(string, string)> Validate()
    {
        if (SeqLen % 2 != 0) yield return ("seq_len", $"must be even, got {SeqLen}");
    }
}

/// <summary>
/// Multi-query associative recall with Zoology's semantics (docs/tasks.md#mqar): keys from [1, V/2), values from
/// [V/2, V), power-law query gaps, labels only after query keys.
/// </summary>
[Help("multi-query associative recall, Zoology's semantics (docs/tasks.md#mqar); the task when a config names none")]
public sealed record MqarConfig : IValidatedConfig, ITask
{
    [Help("vocabulary size V (must exceed every seq_len)"), Range(8, 1 << 20)] public int VocabSize { get; init; } = 512;
    [Help("power-law exponent a of the query gaps, p(g) ∝ a·g^(a−1)"), Range(1e-6, 1)] public double PowerA { get; init; } = 0.01;
    [Help("times the key-value block is repeated (JRT); 1 = Zoology's MQAR"), Range(1, 16)] public int NumPasses { get; init; } = 1;
    [Help("fill non-query positions with uniform random tokens (true) or token 0 (false)")]
    public bool RandomNonQueries { get; init; } = true;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public MqarSlice[] Train { get; init; } = [new() { SeqLen = 64, NumKvPairs = 4, NumExamples = 20_000 }];
    [Help("test slices")] public MqarSlice[] Test { get; init; } = [new() { SeqLen = 64, NumKvPairs = 4, NumExamples = 1000 }];

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public TaskBatch[] TrainBatches() => Mqar.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => Mqar.GenerateAll(this, Test, TestSeed);

    public IEnumerable<(string, string)> Validate()
    {
        foreach (var problem in Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems)) yield return problem;
    }

    IEnumerable<(string, string)> SliceProblems(MqarSlice s)
    {
        if (s.SeqLen >= VocabSize)
            yield return ("seq_len", $"{s.SeqLen} must be below vocab_size {VocabSize} (Zoology requires V > L)");
        if (2 * s.NumKvPairs * NumPasses + 2 * s.NumKvPairs > s.SeqLen)
            yield return ("num_kv_pairs", $"{s.NumKvPairs} pairs need 2·K·passes + 2·K = " +
                $"{2 * s.NumKvPairs * (NumPasses + 1)} ≤ seq_len {s.SeqLen}");
        if (s.NumKvPairs > VocabSize / 2 - 1)
            yield return ("num_kv_pairs", $"{s.NumKvPairs} distinct keys do not fit in the key range [1, {VocabSize / 2})");
    }
}
