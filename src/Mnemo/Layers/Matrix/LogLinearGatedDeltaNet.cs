using Mnemo.Memory.Matrix;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Log-linear Gated DeltaNet (Guo et al. 2025, arXiv 2506.04761; docs/mechanisms.md#log-linear-attention), as the authors'
/// HGatedDeltaNet builds it: Gated DeltaNet's layer (its gates, features and output gate) whose memory is
/// <see cref="LogLinearMemory"/> on the delta rule, one memory per Fenwick level, every level taking the token's
/// transition e^{g}(I − β k kᵀ), each read with its own weight λ_t^{(ℓ)} = softplus(L_{h,ℓ} · (l_proj x_t)_{h,ℓ}); l_proj
/// has no bias and L [H, levels] starts at 1.
/// </summary>
public sealed class LogLinearGatedDeltaNet : GatedDeltaNet, IMatrixMemoryLayer
{
    /// <summary>Its memory is the levels, not one kernel state: the state-collapse mitigations do not apply.</summary>
    bool IMatrixMemoryLayer.RunsKernel => false;

    readonly Projection l_proj;
    readonly Parameter L;
    readonly int _levels;

    public LogLinearGatedDeltaNet(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(LogLinearGatedDeltaNet), c, matrix)
    {
        if (Writes != 1)
            throw new MnemoException($"log_linear_gated_delta_net writes once per token; model.matrix.householder_steps must be 1, " +
                $"got {Writes}");
        _levels = LogLinearMamba2.LevelCount(c);
        l_proj = new Projection(c.DModel, c.NumHeads * _levels, hasBias: false);
        L = nn.Parameter(ones(c.NumHeads, _levels));
        RegisterComponents();
    }

    protected override Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache)
    {
        long b = x.shape[0], t = x.shape[1];
        var (g, beta) = Gates(x, cache?.Position ?? 0);
        var lambda = nn.functional.softplus(L * l_proj.forward(x).view(b, t, Heads, _levels));   // λ [B, T, H, levels]
        var state = cache?.Get("levels") is { } s ? new LogLinearState(s, cache.Position) : null;
        var (y, final) = LogLinearMemory.Run(KernelForm.Chunk, new LogLinearInputs(q, k, v, g!, lambda, state, beta), ChunkSize);
        if (cache is not null) cache.Set("levels", final.S);
        return y;
    }
}
