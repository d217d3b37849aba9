using Mnemo.Memory.Matrix;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Mamba-2 / SSD (Dao &amp; Gu 2024; docs/mechanisms.md#mamba-2) with one group: in_proj gives [z, x, B, C, dt]; x, B, C
/// pass a causal depthwise conv (with bias) + SiLU; Δ = softplus(dt + dt_bias), a_t = exp(Δ_t·A), A = −exp(A_log).
/// The state update H_t = a_t H_{t−1} + B_tᵀ(Δ_t x_t), y_t = C_t H_t + D x_t is the gated linear kernel with
/// q = C, k = B, v = Δx and scalar log-gate g = Δ·A. Output: RMSNorm(y ⊙ silu(z)), then out_proj.
/// Names follow fla's Mamba2 layer: in_proj, conv1d, dt_bias, A_log, D, norm, out_proj.
/// Widths: d_inner = d_model·expand_v (head dim d_inner / num_heads), d_state = the key width per head.
/// </summary>
public class Mamba2 : nn.Module<Tensor, Tensor>, IStreamingMixer, IMatrixMemoryLayer
{
    // private protected, not private: TorchSharp registers a module's fields by reflection, which does not see a base
    // class's private fields, and log-linear Mamba-2 derives from this class.
    private protected readonly Projection in_proj, out_proj;
    private protected readonly ShortConvolution conv1d;
    private protected readonly Parameter dt_bias, A_log, D;
    private protected readonly GatedRMSNorm norm;
    readonly int _heads, _inner, _state, _extra;

    /// <summary>Tokens per chunk of the chunk form (model.matrix.chunk_size).</summary>
    protected int ChunkSize { get; }

    /// <summary>Heads H.</summary>
    protected int Heads => _heads;

    /// <inheritdoc/>
    public IMatrixKernel Kernel { get; set; } = DirectMatrixKernel.Instance;

    public Mamba2(ModelConfig c, MatrixMemoryConfig matrix) : this(nameof(Mamba2), c, matrix, 0) => RegisterComponents();

    /// <param name="extra">more in_proj outputs after dt, handed to <see cref="Remember"/> (log-linear Mamba-2's level logits)</param>
    /// <remarks>Registers nothing: the concrete class registers its components once they all exist.</remarks>
    protected Mamba2(string name, ModelConfig c, MatrixMemoryConfig matrix, int extra) : base(name)
    {
        _heads = c.NumHeads;
        _inner = c.ValueHeadDim * c.NumHeads;
        _state = c.KeyHeadDim;
        _extra = extra;
        ChunkSize = matrix.ChunkSize;
        in_proj = new Projection(c.DModel, 2 * _inner + 2 * _state + _heads + extra, hasBias: false);
        conv1d = new ShortConvolution(_inner + 2 * _state, c.ConvSize, hasBias: true);
        (A_log, dt_bias) = MambaGate.Initial(_heads, matrix.DtMin, matrix.DtMax);
        D = nn.Parameter(ones(_heads));
        norm = new GatedRMSNorm(_inner, c.NormEps, gateFirst: true);
        out_proj = new Projection(_inner, c.DModel, hasBias: false);
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], p = _inner / _heads;
        long[] widths = _extra > 0 ? [_inner, _inner + 2 * _state, _heads, _extra] : [_inner, _inner + 2 * _state, _heads];
        var parts = in_proj.forward(x).split(widths, -1);
        var (z, xBC, dt) = (parts[0], parts[1], parts[2]);
        xBC = conv1d.Forward(xBC, cache, "conv");
        var pieces = xBC.split([_inner, _state, _state], -1);
        var xs = pieces[0].view(b, t, _heads, p);                                    // [B, T, H, P]
        var B = pieces[1].unsqueeze(2).expand(-1, -1, _heads, -1);                   // [B, T, H, N], shared by heads
        var C = pieces[2].unsqueeze(2).expand(-1, -1, _heads, -1);
        var delta = nn.functional.softplus(dt + dt_bias);                            // Δ [B, T, H]
        var g = -A_log.exp() * delta;                                                // log a_t = Δ·A

        var y = Remember(C, B, xs * delta.unsqueeze(-1), g, _extra > 0 ? parts[3] : null, cache);
        y = (y + xs * D.view(1, 1, _heads, 1)).reshape(b, t, _inner);                // + D x skip
        return out_proj.forward(norm.forward(y, z)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The memory: reads y [B, T, H, P] with q = C, k = B [B, T, H, N], v = Δx [B, T, H, P] and the log-decay g = Δ·A
    /// [B, T, H]; <paramref name="extra"/> is the rest of in_proj's output ([B, T, extra]; null for Mamba-2). With a cache,
    /// continues from and updates the state it holds. Mamba-2's is the gated linear kernel.
    /// </summary>
    protected virtual Tensor Remember(Tensor C, Tensor B, Tensor v, Tensor g, Tensor? extra, LayerCache? cache)
    {
        var (y, state) = Kernel.Run(MatrixKernelKind.GatedLinear, new KernelInputs(C, B, v, g, null, cache?.Get("state")), ChunkSize,
            streaming: cache is not null);
        if (cache is not null) cache.Set("state", state);
        return y;
    }
}
