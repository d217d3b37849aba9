using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.memmamba: the note pool of the memmamba mixer (docs/mechanisms.md#memmamba).</summary>
public sealed record MemMambaConfig
{
    [Help("notes a token reads: the last this many important tokens before it (the paper's state pool; 50 there)"), Range(1, 4096)]
    public int PoolSize { get; init; } = 16;
    [Help("width of a note s = W_s x; 0 = d_model / 2"), Range(0, 16384)] public int NoteDim { get; init; }
    [Help("τ1: a token is written to the pool when its importance σ(w·x) exceeds this"), Range(0, 1)]
    public double Threshold { get; init; } = 0.5;

    /// <summary>d_s: <see cref="NoteDim"/>, or d_model / 2 when it is 0.</summary>
    public int Width(int dModel) => NoteDim == 0 ? Math.Max(1, dModel / 2) : NoteDim;
}
