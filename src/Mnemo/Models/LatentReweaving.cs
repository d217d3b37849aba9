using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>
/// Contextual memory reweaving (Dillon et al. 2025, arXiv 2502.02046), as Mnemo builds it: the paper names the steps but
/// gives no equations (docs/mechanisms.md#contextual-memory-reweaving says what was chosen). The latent states of
/// important tokens are captured at every level ℓ = 0 … L (the embeddings, then each block's output) into one
/// <see cref="NotePool"/> per level; the final hidden state h^L_t reads each level's pool (the states captured strictly
/// before t), weighs the levels with π_t = softmax(W_π h^L_t) and adds the reconstruction through a gate:
/// <code>
/// r_t = Σ_ℓ π_{t,ℓ} c^ℓ_t,    h̃_t = h^L_t + σ(W_g h^L_t) ⊙ r_t
/// </code>
/// </summary>
public sealed class LatentReweaving : nn.Module
{
    readonly ModuleList<NotePool> pools;
    readonly Projection level_proj, g_proj;

    public LatentReweaving(ModelConfig c) : base(nameof(LatentReweaving))
    {
        var r = c.Reweaving;
        pools = nn.ModuleList(Enumerable.Range(0, c.NumLayers + 1)
            .Select(_ => new NotePool(c.DModel, c.DModel, r.Width(c.DModel), c.DModel, r.PoolSize, r.Threshold)).ToArray());
        level_proj = new Projection(c.DModel, c.NumLayers + 1);
        g_proj = new Projection(c.DModel, c.DModel);
        RegisterComponents();
    }

    /// <summary>
    /// h̃ [B, T, D] from the states of every level, levels[ℓ] [B, T, D] (the last is h^L); with a cache, each level's
    /// pool is carried from earlier calls.
    /// </summary>
    public Tensor Reweave(IReadOnlyList<Tensor> levels, LayerCache? cache)
    {
        if (levels.Count != pools.Count)
            throw new ArgumentException($"expected {pools.Count} levels (the embeddings, every block), got {levels.Count}", nameof(levels));
        using var scope = NewDisposeScope();
        var h = levels[^1];
        var reads = levels.Select((level, l) => pools[l].Read(h, level, cache?.Child($"level{l}"))).ToArray();
        var weights = level_proj.forward(h).softmax(-1).unsqueeze(-1);                  // π [B, T, L+1, 1]
        var rewoven = (weights * stack(reads, 2)).sum([2]);                              // [B, T, L+1, D] → r [B, T, D]
        return (h + g_proj.forward(h).sigmoid() * rewoven).MoveToOuterDisposeScope();
    }
}
