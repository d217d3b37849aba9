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
public sealed class Mamba2 : nn.Module<Tensor, Tensor>, IStreamingMixer, IMatrixMemoryLayer
{
    readonly Projection in_proj, out_proj;
    readonly ShortConvolution conv1d;
    readonly Parameter dt_bias, A_log, D;
    readonly GatedRMSNorm norm;
    readonly int _heads, _inner, _state, _chunk;

    /// <inheritdoc/>
    public IMatrixKernel Kernel { get; set; } = DirectMatrixKernel.Instance;

    public Mamba2(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(Mamba2))
    {
        _heads = c.NumHeads;
        _inner = c.ValueHeadDim * c.NumHeads;
        _state = c.KeyHeadDim;
        _chunk = matrix.ChunkSize;
        in_proj = new Projection(c.DModel, 2 * _inner + 2 * _state + _heads, hasBias: false);
        conv1d = new ShortConvolution(_inner + 2 * _state, c.ConvSize, hasBias: true);
        (A_log, dt_bias) = MambaGate.Initial(_heads, matrix.DtMin, matrix.DtMax);
        D = nn.Parameter(ones(_heads));
        norm = new GatedRMSNorm(_inner, c.NormEps, gateFirst: true);
        out_proj = new Projection(_inner, c.DModel, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], p = _inner / _heads;
        var parts = in_proj.forward(x).split([_inner, _inner + 2 * _state, _heads], -1);
        var (z, xBC, dt) = (parts[0], parts[1], parts[2]);
        xBC = conv1d.Forward(xBC, cache, "conv");
        var pieces = xBC.split([_inner, _state, _state], -1);
        var xs = pieces[0].view(b, t, _heads, p);                                    // [B, T, H, P]
        var B = pieces[1].unsqueeze(2).expand(-1, -1, _heads, -1);                   // [B, T, H, N], shared by heads
        var C = pieces[2].unsqueeze(2).expand(-1, -1, _heads, -1);
        var delta = nn.functional.softplus(dt + dt_bias);                            // Δ [B, T, H]
        var g = -A_log.exp() * delta;                                                // log a_t = Δ·A

        var inputs = new KernelInputs(C, B, xs * delta.unsqueeze(-1), g, null, cache?.Get("state"));
        var (y, state) = Kernel.Run(MatrixKernelKind.GatedLinear, inputs, _chunk, streaming: cache is not null);
        if (cache is not null) cache.Set("state", state);
        y = (y + xs * D.view(1, 1, _heads, 1)).reshape(b, t, _inner);                // + D x skip
        return out_proj.forward(norm.forward(y, z)).MoveToOuterDisposeScope();
    }
}
