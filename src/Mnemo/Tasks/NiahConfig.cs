using Mnemo.IO;
using Mnemo.Text;

namespace Mnemo.Tasks;

/// <summary>One length of S-NIAH, split into depth bins.</summary>
public sealed record NiahSlice
{
    [Help("sequence length L (haystack, needle, query and value together)"), Range(8, 1 << 24)] public int SeqLen { get; init; } = 128;
    [Help("examples in each depth bin of this slice"), Range(1, 100_000_000)] public int NumExamples { get; init; } = 1000;
    [Help("needle depths: uniform (random) or even (example i of n at (i + 0.5)/n within its bin)")]
    public DepthKind Depths { get; init; } = DepthKind.Uniform;
    [Help("depth bins: the slice becomes this many batches, bin b holding depths in [b/B, (b+1)/B) (for depth × length heatmaps)"),
        Range(1, 1000)]
    public int DepthBins { get; init; } = 1;
}

/// <summary>
/// Token-level analogues of RULER's single-needle tasks S-NIAH-1/2/3 (docs/tasks.md#s-niah).
/// Vocabulary layout, T = the tokenizer's vocabulary (256 for bytes): text [0, T), needle marker T, query marker
/// T + 1, keys [T + 2, T + 2 + num_keys), value symbols [T + 2 + num_keys, vocab_size). See <see cref="Niah"/>.
/// <list type="bullet">
/// <item>variant 1 (passkey): the noise haystack (the grass/sky/sun filler sentences, repeated), 7-symbol number.</item>
/// <item>variant 2 (number): natural text from <see cref="Text"/>, 7-symbol number (10 digit symbols).</item>
/// <item>variant 3 (UUID): natural text, a 32-symbol value over 16 hex symbols.</item>
/// </list>
/// </summary>
[Help("S-NIAH-1/2/3 analogue (single needle in a noise or text haystack)")]
public sealed record NiahConfig : IValidatedConfig, IBinnedTask
{
    [Help("S-NIAH variant: 1 = noise haystack + number, 2 = text haystack + number, 3 = text haystack + UUID-like value"), Range(1, 3)]
    public int Variant { get; init; } = 1;
    [Help("value length in symbols; 0 = the variant's (7 for a number, 32 for a UUID)"), Range(0, 1024)] public int ValueLen { get; init; }
    [Help("distinct key tokens naming the needle (RULER's key word)"), Range(1, 1 << 20)] public int NumKeys { get; init; } = 16;
    [Help("tokenizer and corpus of the haystack (variants 2 and 3) and of the noise sentences (variant 1)")]
    public TextConfig Text { get; init; } = new();
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;
    [Help("training slices")] public NiahSlice[] Train { get; init; } = [new() { SeqLen = 128, NumExamples = 8000 }];
    [Help("test slices")]
    public NiahSlice[] Test { get; init; } = [new() { SeqLen = 128, NumExamples = 100, Depths = DepthKind.Even, DepthBins = 5 }];

    /// <summary>Natural text (variants 2, 3) rather than the repeated noise sentences (variant 1).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool TextHaystack => Variant >= 2;

    /// <summary>Value alphabet: 10 digits for a number, 16 hex symbols for a UUID.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int ValueSymbols => Variant == 3 ? 16 : 10;

    [System.Text.Json.Serialization.JsonIgnore] public int ValueLength => ValueLen > 0 ? ValueLen : Variant == 3 ? 32 : 7;

    [System.Text.Json.Serialization.JsonIgnore] public int TextVocab => Tokenizers.Get(Text.Tokenizer).VocabSize;
    [System.Text.Json.Serialization.JsonIgnore] public int NeedleMarker => TextVocab;
    [System.Text.Json.Serialization.JsonIgnore] public int QueryMarker => TextVocab + 1;
    [System.Text.Json.Serialization.JsonIgnore] public int FirstKey => TextVocab + 2;
    [System.Text.Json.Serialization.JsonIgnore] public int FirstValue => FirstKey + NumKeys;
    [System.Text.Json.Serialization.JsonIgnore] public int VocabSize => FirstValue + ValueSymbols;

    /// <summary>Shortest sequence that holds the needle, the query, the value and one haystack token.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int MinSeqLen => 2 * ValueLength + 4;

    public int LongestSeqLen() => Train.Concat(Test).Max(s => s.SeqLen);
    public string? DataNote() => TextHaystack ? Text.FallbackNote() : null;
    public TaskBatch[] TrainBatches() => Niah.GenerateAll(this, Train, TrainSeed);
    public TaskBatch[] TestBatches() => Niah.GenerateAll(this, Test, TestSeed);
    public IReadOnlyList<SliceBin> TestBins() => Niah.Bins(Test);
    public string ReportedScore() => "exact_match";

    public IEnumerable<(string, string)> Validate() => Examples.CheckSlices(TrainSeed, TestSeed, Train, Test, SliceProblems);

    IEnumerable<(string, string)> SliceProblems(NiahSlice s)
    {
        if (s.SeqLen < MinSeqLen)
            yield return ("seq_len", $"{s.SeqLen} cannot hold a {ValueLength}-symbol needle, the query and its value; " +
                $"need ≥ 2·value_len + 4 = {MinSeqLen}");
    }
}
