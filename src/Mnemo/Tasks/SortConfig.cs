using Mnemo.IO;
using Mnemo.Text;

namespace Mnemo.Tasks;

/// <summary>One SORT setting: excerpt length L_E, segment length L_S and examples per distance bin.</summary>
public sealed record SortSlice
{
    [Help("excerpt length L_E in tokens"), Range(5, 1 << 24)] public int ExcerptLen { get; init; } = 200;
    [Help("segment length L_S in tokens (L_E ≥ 5·L_S keeps every distance bin non-empty)"), Range(1, 1 << 20)]
    public int SegmentLen { get; init; } = 10;
    [Help("examples per batch, even so that exactly half present the earlier segment first; a test slice has one batch per distance bin"),
        Range(2, 100_000_000)]
    public int NumExamples { get; init; } = 1000;

    /// <summary>excerpt, SEP, A, SEP, B, QUERY: the sequence up to the answer.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int SeqLen => ExcerptLen + 2 * SegmentLen + 3;
}

/// <summary>
/// Token-level SORT, in-context condition (docs/tasks.md#sort): which of two segments of an excerpt came first.
/// Vocabulary layout, T = the tokenizer's vocabulary: text [0, T), SEP T, QUERY T + 1, A_FIRST T + 2, B_FIRST
/// T + 3. The "book" is <see cref="Text"/> (generated text by default; kjv or austen when set up). See <see cref="Sort"/>.
/// </summary>
[Help("SORT (which of two excerpt segments came first, in context)")]
public sealed record SortConfig : IValidatedConfig, IBinnedTask
{
    [Help("tokenizer and corpus of the book")] public TextConfig Text { get; init; } = new();
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices (distance bins drawn uniformly per example)")]
    public SortSlice[] Train { get; init; } = [new() { NumExamples = 8000 }];
    [Help("test slices (one batch per distance bin)")] public SortSlice[] Test { get; init; } = [new() { NumExamples = 100 }];

    [System.Text.Json.Serialization.JsonIgnore] public int TextVocab => Tokenizers.Get(Text.Tokenizer).VocabSize;
    [System.Text.Json.Serialization.JsonIgnore] public int Separator => TextVocab;
    [System.Text.Json.Serialization.JsonIgnore] public int QueryMarker => TextVocab + 1;
    [System.Text.Json.Serialization.JsonIgnore] public int AFirst => TextVocab + 2;
    [System.Text.Json.Serialization.JsonIgnore] public int BFirst => TextVocab + 3;
    [System.Text.Json.Serialization.JsonIgnore] public int VocabSize => TextVocab + 4;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public string? DataNote() => Text.FallbackNote();
    public TaskBatch[] TrainBatches() => Sort.GenerateTrain(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => Sort.GenerateTest(this, Test, TestSeed);
    public IReadOnlyList<SliceBin> TestBins() => Sort.Bins(Test);

    public IEnumerable<(string, string)> Validate()
    {
        foreach (var problem in Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems)) yield return problem;
    }

    static IEnumerable<(string, string)> SliceProblems(SortSlice s)
    {
        if (s.NumExamples % 2 != 0)
            yield return ("num_examples", $"{s.NumExamples} is odd; an even count presents each order exactly half the time");
        var edges = Sort.DistanceEdges(s.ExcerptLen, s.SegmentLen);
        if (Enumerable.Range(0, edges.Length - 1).Any(b => edges[b] >= edges[b + 1]))
            yield return ("segment_len", $"{s.SegmentLen} leaves an empty distance bin (edges {string.Join(", ", edges)}) in an excerpt " +
                $"of {s.ExcerptLen}; need excerpt_len ≥ 5·segment_len");
        else if (edges[^1] - 1 + s.SegmentLen > s.ExcerptLen)   // the farthest pair, d = last edge − 1, must fit
            yield return ("segment_len", $"{s.SegmentLen}: two segments up to {edges[^1] - 1} tokens apart do not fit in an excerpt of " +
                $"{s.ExcerptLen} (need {edges[^1] - 1 + s.SegmentLen})");
    }
}
