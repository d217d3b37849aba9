using Mnemo.IO;

namespace Mnemo.Tasks;

/// <summary>The filler the needle hides in.</summary>
public enum HaystackKind
{
    /// <summary>RULER's "noise" haystack (originally named "repeat"): one sentence of filler tokens, repeated.</summary>
    Repeat,
    /// <summary>Independent uniform filler tokens: nothing to learn to skip, every token is new content.</summary>
    Random,
}

/// <summary>Where the needle goes: drawn uniformly (training), or evenly spread over the slice (evaluation, as
/// Stuffed Mamba's depth (i + 0.5)/n).</summary>
public enum DepthKind { Uniform, Even }

/// <summary>One length of passkey retrieval and how many examples to draw for it.</summary>
public sealed record PasskeySlice
{
    [Help("sequence length L (haystack, needle, query and answer together)"), Range(8, 1 << 24)] public int SeqLen { get; init; } = 64;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
    [Help("needle depths: uniform (random) or even (example i of n at depth (i + 0.5)/n)")]
    public DepthKind Depths { get; init; } = DepthKind.Uniform;
}

/// <summary>
/// Token-level passkey retrieval in the spirit of S-NIAH-1 / Landmark passkey (docs/tasks.md#passkey), without a
/// tokenizer. Vocabulary layout: digits [0, 10), needle marker 10, query marker 11, keys [12, 12 + num_keys),
/// filler [12 + num_keys, vocab_size). See <see cref="Passkey"/> for the sequence.
/// </summary>
[Help("token-level passkey retrieval, S-NIAH-1 style: find \"needle key d1…dn\" in a haystack, answer after \"query key\"" +
    " (docs/tasks.md#passkey)")]
public sealed record PasskeyConfig : IValidatedConfig, ITask
{
    [Help("vocabulary size V: 10 digits, 2 markers, num_keys keys and the rest filler"), Range(16, 1 << 20)]
    public int VocabSize { get; init; } = 64;
    [Help("digits of the passkey (each one of 10 digit tokens)"), Range(1, 64)] public int NumDigits { get; init; } = 5;
    [Help("distinct key tokens naming the needle (RULER's key word)"), Range(1, 1 << 20)] public int NumKeys { get; init; } = 16;
    [Help("haystack: repeat (RULER's noise: one filler sentence repeated) or random (uniform filler tokens)")]
    public HaystackKind Haystack { get; init; } = HaystackKind.Repeat;
    [Help("tokens in the repeated filler sentence; the needle goes at a sentence boundary"), Range(1, 1 << 20)]
    public int SentenceLen { get; init; } = 8;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public PasskeySlice[] Train { get; init; } = [new() { SeqLen = 64, NumExamples = 8000 }];
    [Help("test slices")] public PasskeySlice[] Test { get; init; } = [new() { SeqLen = 64, NumExamples = 500, Depths = DepthKind.Even }];

    /// <summary>Filler tokens available after digits, markers and keys.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int FillerTokens => VocabSize - Passkey.FirstKey - NumKeys;

    /// <summary>Shortest sequence that holds the needle, the query, the answer and one haystack token.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int MinSeqLen => 2 * NumDigits + 4;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public TaskBatch[] TrainBatches() => Passkey.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => Passkey.GenerateAll(this, Test, TestSeed);
    public string ReportedScore() => "exact_match";

    public IEnumerable<(string, string)> Validate()
    {
        if (FillerTokens < 2)
            yield return ("vocab_size", $"{VocabSize} leaves {FillerTokens} filler tokens after 10 digits, " +
                $"2 markers and {NumKeys} keys; need at least 2");
        foreach (var problem in Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems)) yield return problem;
    }

    IEnumerable<(string, string)> SliceProblems(PasskeySlice s)
    {
        if (s.SeqLen < MinSeqLen)
            yield return ("seq_len", $"{s.SeqLen} cannot hold a {NumDigits}-digit needle, the query and its answer; " +
                $"need ≥ 2·num_digits + 4 = {MinSeqLen}");
    }
}
