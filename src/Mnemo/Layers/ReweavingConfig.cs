using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.reweaving: contextual memory reweaving around the whole backbone
/// (docs/mechanisms.md#contextual-memory-reweaving).</summary>
public sealed record ReweavingConfig
{
    [Help("capture the latent states of important tokens at every level (the embeddings and each block's output) and " +
        "reweave them into the final hidden state")]
    public bool Enabled { get; init; }
    [Help("states a token reads at each level: the last this many captured before it"), Range(1, 4096)]
    public int PoolSize { get; init; } = 16;
    [Help("width of a captured state's note; 0 = d_model / 2"), Range(0, 16384)] public int StateDim { get; init; }
    [Help("a token's state is captured at a level when its relevance σ(w·h) there exceeds this"), Range(0, 1)]
    public double Threshold { get; init; } = 0.5;

    /// <summary>The note width: <see cref="StateDim"/>, or d_model / 2 when it is 0.</summary>
    public int Width(int dModel) => StateDim == 0 ? Math.Max(1, dModel / 2) : StateDim;

    /// <summary>Floats the pools hold: P notes (key and value) at each of the L + 1 levels.</summary>
    public long StateFloats(int dModel, int layers) => Enabled ? (layers + 1L) * PoolSize * (Width(dModel) + dModel) : 0;
}
