using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Training;

namespace Mnemo.Retrieval;

/// <summary>The documents and queries of the retrieval study (docs/retrieval.md#passages-and-queries).</summary>
public sealed record SealDataConfig : IValidatedConfig
{
    [Help("books of the New Testament to index, as the files name them (e.g. Matthew, 1 Corinthians); empty = all 27. " +
        "Default: John, whose 229 passages a CPU-sized generator can learn in 3,000 steps")]
    public string[] Books { get; init; } = ["John"];
    [Help("consecutive verses of one chapter per passage (a chapter's last passage may be shorter)"), Range(1, 1000)]
    public int VersesPerPassage { get; init; } = 4;
    [Help("seed of the held-out verse of each passage and of the queries measured (the same for every model seed)"), Range(0, int.MaxValue)]
    public int Seed { get; init; }
    [Help("passages whose queries are measured, a seeded sample; 0 = every passage"), Range(0, 1_000_000)]
    public int Queries { get; init; } = 500;
    [Help("words of an excerpt query, cut from the held-out verse"), Range(1, 1000)]
    public int ExcerptWords { get; init; } = 8;
    [Help("longest source the generator reads, in tokens (longer queries keep their start)"), Range(4, 4096)]
    public int MaxSourceTokens { get; init; } = 64;

    public IEnumerable<(string, string)> Validate() => [];
}

/// <summary>SEAL's n-gram generation and scoring (docs/retrieval.md#seal), with the paper code's defaults.</summary>
public sealed record SealSearchConfig : IValidatedConfig
{
    [Help("beams of the constrained beam search; each step keeps twice as many candidates as keys"), Range(1, 1000)]
    public int Beam { get; init; } = 15;
    [Help("longest generated n-gram, in tokens; every prefix a beam step reaches is a key"), Range(1, 100)]
    public int MaxNgram { get; init; } = 10;
    [Help("α: an n-gram's weight is its positive log-odds to this power"), Range(0, 100)]
    public double ScoreExponent { get; init; } = 2;
    [Help("added to the corpus count of an n-gram and to the corpus length in its unconditional probability"), Range(0, 1e9)]
    public double Smoothing { get; init; } = 5;
    [Help("β: share of an n-gram's weight that its tokens already counted in the document take away"), Range(0, 1)]
    public double RepetitionPenalty { get; init; } = 0.8;
    [Help("n-grams occurring at most this often find documents; more frequent ones only score documents found"), Range(1, int.MaxValue)]
    public int MaxHits { get; init; } = 1500;
    [Help("documents rescored with the intersective scoring, the best by the first pass"), Range(1, int.MaxValue)]
    public int FullyScore { get; init; } = 1500;
    [Help("add the query's own 1–3-word n-grams that occur in the corpus as keys, scored by the generator (the paper code's default)")]
    public bool QueryKeys { get; init; } = true;
    [Help("add unigram credits from the first decoding step's distribution (the paper code's unigram scores)")]
    public bool Unigrams { get; init; } = true;

    public IEnumerable<(string, string)> Validate() => [];
}

/// <summary>BM25's constants (Pyserini's defaults).</summary>
public sealed record Bm25Config : IValidatedConfig
{
    [Help("BM25 k1: term-frequency saturation"), Range(0, 100)] public double K1 { get; init; } = 0.9;
    [Help("BM25 b: document-length normalisation"), Range(0, 1)] public double B { get; init; } = 0.4;

    public IEnumerable<(string, string)> Validate() => [];
}

/// <summary>The SEAL retrieval study: data, the generator (any mixer), its training, the search and BM25.</summary>
public sealed record SealConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public SealDataConfig Data { get; init; } = new();
    public ModelConfig Model { get; init; } = new()
    {
        DModel = 128, NumLayers = 4, NumHeads = 4, Mixer = MixerKind.Attention, MaxPositions = 256,
    };
    public TrainingConfig Training { get; init; } = new()
    {
        Steps = 3000, BatchSize = 64, Lr = 2e-3, WarmupSteps = 100, WeightDecay = 0.1, LogEvery = 250,
    };
    public SealSearchConfig Search { get; init; } = new();
    public Bm25Config Bm25 { get; init; } = new();
    [Help("share of training pairs whose source is a paraphrase of a verse (the rest: a span of a passage asking for " +
        "another span of it)"), Range(0, 1)]
    public double SupervisedShare { get; init; } = 0.5;

    public IEnumerable<(string, string)> Validate() => [];

    /// <summary>A config file over the defaults above, then "field=value" overrides (see <see cref="ConfigBinder.LoadOver"/>).</summary>
    public static SealConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new SealConfig(), file, overrides ?? [], "the default seal config");

    public string ToJson() => ConfigBinder.ToJson(this);
}
