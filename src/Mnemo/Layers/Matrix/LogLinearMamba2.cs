using Mnemo.Memory.Matrix;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Log-linear Mamba-2 (Guo et al. 2025, arXiv 2506.04761; docs/mechanisms.md#log-linear-attention), as fla's
/// LogLinearMamba2 builds it: Mamba-2's layer whose memory is <see cref="LogLinearMemory"/>, one memory per Fenwick level,
/// each read with its own weight λ_t^{(ℓ)} = softplus(L_{h,ℓ} · dl_{t,h,ℓ}); in_proj also gives the level logits dl
/// (H·levels more outputs) and L [H, levels] starts at 1.
/// </summary>
public sealed class LogLinearMamba2 : Mamba2, IMatrixMemoryLayer
{
    /// <summary>Its memory is the levels, not one kernel state: the state-collapse mitigations do not apply.</summary>
    bool IMatrixMemoryLayer.RunsKernel => false;

    readonly Parameter L;
    readonly int _levels;

    public LogLinearMamba2(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(LogLinearMamba2), c, matrix, c.NumHeads * LevelCount(c))
    {
        _levels = LevelCount(c);
        L = nn.Parameter(ones(c.NumHeads, _levels));
        RegisterComponents();
    }

    /// <summary>Levels: fla's 15 (streams shorter than 2^14 = 16,384 tokens), more when model.max_positions asks for
    /// longer: ⌈log₂ max_positions⌉ + 1.</summary>
    public static int LevelCount(ModelConfig c) => Math.Max(15, (int)Math.Ceiling(Math.Log2(c.MaxPositions)) + 1);

    protected override Tensor Remember(Tensor C, Tensor B, Tensor v, Tensor g, Tensor? extra, LayerCache? cache)
    {
        long b = C.shape[0], t = C.shape[1];
        var lambda = nn.functional.softplus(L * extra!.view(b, t, Heads, _levels));              // λ [B, T, H, levels]
        var state = cache?.Get("levels") is { } s ? new LogLinearState(s, cache.Position) : null;
        var (y, final) = LogLinearMemory.Run(KernelForm.Chunk, new LogLinearInputs(C, B, v, g, lambda, state), ChunkSize);
        if (cache is not null) cache.Set("levels", final.S);
        return y;
    }
}
