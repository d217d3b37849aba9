using System.Text.Json.Serialization;
using Mnemo.IO;

namespace Mnemo.Tasks.Verbatim;

/// <summary>What list 2 is (Armeni et al.'s conditions).</summary>
public enum ListCondition
{
    /// <summary>List 2 is list 1.</summary>
    Repeat,
    /// <summary>The same nouns in another order.</summary>
    Permute,
    /// <summary>Nouns not in list 1 (the paper's control).</summary>
    Novel,
}

/// <summary>One (list length, intervening length) setting and how many vignettes to draw for it.</summary>
public sealed record VerbatimSlice
{
    [Help("nouns per list N (paper: 3, 5, 7, 10)"), Range(2, 1 << 16)] public int ListLen { get; init; } = 5;
    [Help("filler tokens between list 1 and the marker (paper's intervening text: 26, 47, 99, 194, 435)"), Range(0, 1 << 24)]
    public int FillerLen { get; init; } = 26;
    [Help("vignettes in this slice (conditions cycle repeat, permute, novel)"), Range(3, 100_000_000)]
    public int NumExamples { get; init; } = 600;
}

/// <summary>
/// Verbatim short-term memory as a token task (Armeni, Honey &amp; Linzen 2022; docs/tasks.md#verbatim-repetition). Vocabulary: nouns
/// [0, num_nouns), preface tokens, marker tokens, filler tokens. A vignette is
/// <code>preface  list-1  filler  marker  list-2</code>
/// with a fixed preface (the preface tokens in order: "Before the meeting, Mary wrote down the following list of
/// words:"), N distinct nouns, uniform filler tokens, a fixed marker ("When she got back, she read the list again:")
/// and list 2 in the example's condition (example i: repeat, permute, novel for i mod 3). Training is next-token
/// prediction on every position after the preface (or every position, label_all). Testing labels the nouns of
/// both lists; metrics "repeat_surprisal_{repeat,permute,novel}" are the median 100·x2/x1 per condition
/// (<see cref="RepeatSurprisal"/>), and the headline is next-token accuracy on list 2 without its first noun
/// ("list2_accuracy").
/// </summary>
[Help("verbatim repetition of noun lists (Armeni et al.): repeat surprisal per condition; headline is next-token accuracy on list 2")]
public sealed record VerbatimConfig : IValidatedConfig, ITask
{
    [Help("nouns in the pool lists are drawn from (novel lists need ≥ 2·list_len)"), Range(2, 1 << 20)]
    public int NumNouns { get; init; } = 64;
    [Help("tokens of the fixed preface"), Range(1, 1024)] public int PrefaceLen { get; init; } = 8;
    [Help("tokens of the fixed \"read the list again\" marker"), Range(1, 1024)] public int MarkerLen { get; init; } = 6;
    [Help("distinct filler tokens"), Range(1, 1 << 20)] public int FillerTokens { get; init; } = 32;
    [Help("training labels: every next token (true) or every token after the preface (false)")] public bool LabelAll { get; init; }
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public VerbatimSlice[] Train { get; init; } = [new() { ListLen = 5, FillerLen = 26, NumExamples = 6000 }];
    [Help("test slices")] public VerbatimSlice[] Test { get; init; } = [new() { ListLen = 5, FillerLen = 26, NumExamples = 600 }];

    [JsonIgnore] public int VocabSize => NumNouns + PrefaceLen + MarkerLen + FillerTokens;
    [JsonIgnore] public int FirstPreface => NumNouns;
    [JsonIgnore] public int FirstMarker => NumNouns + PrefaceLen;
    [JsonIgnore] public int FirstFiller => NumNouns + PrefaceLen + MarkerLen;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => Verbatim.Layout.Of(this, s).RowLen);
    public TaskBatch[] TrainBatches() => Train.Select((s, i) => Verbatim.Generate(this, s, TrainSeed, i, train: true)).ToArray();
    public TaskBatch[] TestBatches() => Test.Select((s, i) => Verbatim.Generate(this, s, TestSeed, i, train: false)).ToArray();
    public IReadOnlyList<ISliceMetric> SliceMetrics(int sliceIndex) => [new VerbatimMetric(Verbatim.Layout.Of(this, Test[sliceIndex]))];
    public string? HeadlineMetric() => VerbatimMetric.List2Accuracy;

    public IEnumerable<(string, string)> Validate()
    {
        foreach (var problem in Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems)) yield return problem;
    }

    IEnumerable<(string, string)> SliceProblems(VerbatimSlice s)
    {
        if (2 * s.ListLen > NumNouns)
            yield return ("list_len", $"{s.ListLen} nouns per list need num_nouns ≥ {2 * s.ListLen} for a novel list 2 (now {NumNouns})");
    }
}
