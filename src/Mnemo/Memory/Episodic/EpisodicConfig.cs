using Mnemo.IO;

namespace Mnemo.Memory.Episodic;

/// <summary>How EM-LLM reads a trained attention model's context (docs/mechanisms.md#em-llm-episodic-memory). The
/// paper's values are for 4k-token windows of 7–8B models; the defaults here are scaled to models trained on 64 tokens.</summary>
public sealed record EpisodicConfig : IValidatedConfig
{
    [Help("n_init: the first tokens, read by every query"), Range(0, 1 << 20)] public int InitTokens { get; init; } = 4;
    [Help("n_local: the tokens before an execution block, read with the block by all its queries"), Range(1, 1 << 20)]
    public int LocalTokens { get; init; } = 32;
    [Help("n_mem: tokens of retrieved events each block reads (0 = none: init tokens and the local window only)"),
        Range(0, 1 << 20)]
    public int MemoryTokens { get; init; } = 16;
    [Help("tokens per execution block: one retrieval per block and layer"), Range(1, 1 << 20)]
    public int Block { get; init; } = 16;
    [Help("γ: a token opens an event when its surprise exceeds μ + γσ of the previous surprise_window tokens"), Range(-100, 100)]
    public double Gamma { get; init; } = 1;
    [Help("τ: tokens whose surprise gives the threshold's mean and deviation"), Range(2, 1 << 20)]
    public int SurpriseWindow { get; init; } = 32;
    [Help("shortest event, in tokens"), Range(1, 1 << 20)] public int MinEvent { get; init; } = 4;
    [Help("longest event: a longer run without a surprise is cut"), Range(1, 1 << 20)] public int MaxEvent { get; init; } = 32;
    [Help("boundary refinement on the key-similarity graph: none, modularity or conductance")]
    public RefinementKind Refinement { get; init; } = RefinementKind.None;
    [Help("rotary models: read the init tokens and retrieved events at one position just before the local window, as the " +
        "paper's code (after InfLLM) does; false reads each key at its own position")]
    public bool Reposition { get; init; } = true;
    [Help("fraction of n_mem kept for the contiguity buffer: the neighbouring events of those retrieved (0 = none)"),
        Range(0, 1)]
    public double Contiguity { get; init; }

    /// <summary>Retrieved tokens chosen by similarity: n_mem less the contiguity buffer.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int SimilarityTokens => MemoryTokens - ContiguityTokens;

    /// <summary>The contiguity buffer's tokens: ⌊contiguity · n_mem⌋.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public int ContiguityTokens => (int)Math.Floor(Contiguity * MemoryTokens);

    public IEnumerable<(string, string)> Validate()
    {
        if (MinEvent > MaxEvent) yield return ("min_event", $"{MinEvent} is longer than max_event {MaxEvent}");
    }
}

public enum RefinementKind { None, Modularity, Conductance }
