using Mnemo.IO;

namespace Mnemo.Tasks;

/// <summary>Which bAbI question the fact chains ask (BABILong's qa1 and qa2).</summary>
public enum FactQuestion
{
    /// <summary>Single supporting fact: "where is entity E?" → the location E moved to last.</summary>
    Qa1,
    /// <summary>Two supporting facts: "where is object O?" → where its holder is now, or where it was dropped.</summary>
    Qa2,
}

/// <summary>One total length of fact chains and how many examples to draw for it.</summary>
public sealed record FactChainsSlice
{
    [Help("total sequence length L: facts, filler sentences and the question"), Range(4, 1 << 24)] public int SeqLen { get; init; } = 128;
    [Help("examples in this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
}

/// <summary>
/// A token-level BABILong analogue (docs/tasks.md#fact-chains): bAbI-style facts about entities,
/// locations and objects hidden in order among filler sentences, then a question whose answer is a location.
/// Vocabulary: 0 period, 1 moved_to, 2 grabbed, 3 dropped, 4 where_is, then entities, locations, objects, and the
/// rest filler. See <see cref="FactChains"/>.
/// </summary>
[Help("BABILong-style fact chains (qa1/qa2) among filler sentences, token-level (docs/tasks.md#fact-chains)")]
public sealed record FactChainsConfig : IValidatedConfig, ITask
{
    [Help("question type: qa1 (where is an entity: its latest move) or qa2 (where is an object: its holder's location, with grab/drop)")]
    public FactQuestion Qa { get; init; } = FactQuestion.Qa1;
    [Help("vocabulary size V: 5 fixed tokens, entities, locations, objects, and the rest filler"), Range(8, 1 << 20)]
    public int VocabSize { get; init; } = 64;
    [Help("entity tokens (bAbI's people)"), Range(1, 1 << 16)] public int NumEntities { get; init; } = 4;
    [Help("location tokens (bAbI's six rooms); the answers"), Range(2, 1 << 16)] public int NumLocations { get; init; } = 6;
    [Help("object tokens (qa2's grabbable things)"), Range(1, 1 << 16)] public int NumObjects { get; init; } = 4;
    [Help("fewest facts in a sample"), Range(1, 1 << 16)] public int MinFacts { get; init; } = 2;
    [Help("most facts in a sample (drawn uniformly in [min_facts, max_facts])"), Range(1, 1 << 16)] public int MaxFacts { get; init; } = 10;
    [Help("filler words per filler sentence (each sentence ends with a period)"), Range(1, 1 << 16)]
    public int FillerSentenceLen { get; init; } = 8;
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public FactChainsSlice[] Train { get; init; } = [new() { SeqLen = 128, NumExamples = 8000 }];
    [Help("test slices")]
    public FactChainsSlice[] Test { get; init; } =
        [new() { SeqLen = 128, NumExamples = 500 }, new() { SeqLen = 256, NumExamples = 500 }, new() { SeqLen = 512, NumExamples = 500 }];

    [System.Text.Json.Serialization.JsonIgnore] public int FirstEntity => FactChains.FirstEntity;
    [System.Text.Json.Serialization.JsonIgnore] public int FirstLocation => FirstEntity + NumEntities;
    [System.Text.Json.Serialization.JsonIgnore] public int FirstObject => FirstLocation + NumLocations;
    [System.Text.Json.Serialization.JsonIgnore] public int FirstFiller => FirstObject + NumObjects;
    [System.Text.Json.Serialization.JsonIgnore] public int FillerTokens => VocabSize - FirstFiller;

    /// <summary>The shortest sequence holding max_facts facts and the question, with no filler.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int MinSeqLen => FactChains.FactLen * MaxFacts + FactChains.QuestionLen;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public TaskBatch[] TrainBatches() => FactChains.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => FactChains.GenerateAll(this, Test, TestSeed);

    public IEnumerable<(string, string)> Validate()
    {
        if (FillerTokens < 2)
            yield return ("vocab_size", $"{VocabSize} leaves {FillerTokens} filler tokens after 5 fixed tokens, {NumEntities} entities, " +
                $"{NumLocations} locations and {NumObjects} objects; need at least 2");
        if (MaxFacts < MinFacts) yield return ("max_facts", $"{MaxFacts} is below min_facts {MinFacts}");
        if (Qa == FactQuestion.Qa2 && MinFacts < 2)
            yield return ("min_facts", $"qa2 needs at least 2 facts (a move and a grab), got {MinFacts}");
        foreach (var problem in Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems)) yield return problem;
    }

    IEnumerable<(string, string)> SliceProblems(FactChainsSlice s)
    {
        if (s.SeqLen < MinSeqLen)
            yield return ("seq_len", $"{s.SeqLen} cannot hold {MaxFacts} facts of {FactChains.FactLen} tokens and the " +
                $"question; need ≥ {MinSeqLen}");
    }
}
