using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// MemMamba's note block before a Mamba-2 layer (Wang et al. 2025, arXiv 2510.03279; docs/mechanisms.md#memmamba), mixer
/// "memmamba": a <see cref="NotePool"/> of the layer's own input, the last P notes of tokens whose importance σ(w_i · x_t)
/// exceeds τ1, read by every later token and gated in:
/// <code>
/// x'_t = x_t + σ(W_g x_t) ⊙ c_t,   y = Mamba2(x')
/// </code>
/// The paper's cross-layer attention and its state-sufficiency trigger τ2 are not built: every token reads the pool, and
/// the learned gate decides how much.
/// </summary>
public sealed class MemMamba : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly Mamba2 mamba;
    readonly NotePool notes;
    readonly Projection g_proj;

    public MemMamba(ModelConfig c, MatrixMemoryConfig matrix, MemMambaConfig config) : base(nameof(MemMamba))
    {
        mamba = new Mamba2(c, matrix);
        notes = new NotePool(c.DModel, c.DModel, config.Width(c.DModel), c.DModel, config.PoolSize, config.Threshold);
        g_proj = new Projection(c.DModel, c.DModel);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <param name="x">[B, T, D]</param>
    /// <returns>[B, T, D]</returns>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        var mambaCache = cache?.Child("mamba");
        if (mambaCache is not null) mambaCache.Position = cache!.Position;
        return mamba.Forward(ReadNotes(x, cache), mambaCache).MoveToOuterDisposeScope();
    }

    /// <summary>x' = x + σ(W_g x) ⊙ c: the input [B, T, D] with the notes it read; with a cache, the pool is carried.</summary>
    public Tensor ReadNotes(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        return (x + g_proj.forward(x).sigmoid() * notes.Read(x, x, cache)).MoveToOuterDisposeScope();
    }
}
