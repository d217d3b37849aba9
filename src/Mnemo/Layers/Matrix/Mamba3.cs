using Mnemo.Memory.Matrix;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Mamba-3, single-input single-output (Lahoti et al. 2026, arXiv 2603.15569; docs/mechanisms.md#mamba-3), as fla's
/// Mamba3 layer builds it: in_proj gives [z, x, B, C, dd_dt, dd_A, trap, angles] (no short convolution);
/// Δ = softplus(dd_dt + dt_bias), A = min(−softplus(dd_A), −10⁻⁴) per head and token, λ = σ(trap),
/// θ = π tanh(angles) (R = ⌊N/4⌋ rates shared by the heads); B and C pass an RMSNorm and get a bias per head
/// (B_bias, C_bias, starting at 1), then the trapezoidal, rotated state update of <see cref="Mamba3Memory"/> with q = C,
/// k = B, v = x; y = (read + D x) ⊙ silu(z), then out_proj.
/// Widths as Mamba-2's: d_inner = d_model·expand_v (head dim d_inner / num_heads), the state N = the key width per head.
/// </summary>
public sealed class Mamba3 : nn.Module<Tensor, Tensor>, IStreamingMixer, IMatrixMemoryLayer
{
    const double AFloor = 1e-4;
    readonly Projection in_proj, out_proj;
    readonly RMSNorm B_norm, C_norm;
    readonly Parameter dt_bias, B_bias, C_bias, D;
    readonly int _heads, _inner, _state, _angles, _chunk;

    /// <inheritdoc/>
    public IMatrixKernel Kernel { get; set; } = DirectMatrixKernel.Instance;

    public Mamba3(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(Mamba3))
    {
        _heads = c.NumHeads;
        _inner = c.ValueHeadDim * c.NumHeads;
        _state = c.KeyHeadDim;
        _angles = RotaryRates(_state);
        _chunk = matrix.ChunkSize;
        in_proj = new Projection(c.DModel, 2 * _inner + 2 * _state + 3 * _heads + _angles, hasBias: false);
        dt_bias = MambaGate.Initial(_heads, matrix.DtMin, matrix.DtMax).DtBias;
        (B_norm, C_norm) = (new RMSNorm(_state, c.NormEps), new RMSNorm(_state, c.NormEps));
        (B_bias, C_bias) = (nn.Parameter(ones(_heads, _state)), nn.Parameter(ones(_heads, _state)));
        D = nn.Parameter(ones(_heads));
        out_proj = new Projection(_inner, c.DModel, hasBias: false);
        RegisterComponents();
    }

    /// <summary>R: half the state's channels rotate, in pairs (fla's rope_fraction 0.5), so ⌊N/4⌋ rates; at least one.</summary>
    public static int RotaryRates(int state) => Math.Max(1, state / 2 / 2);

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], p = _inner / _heads;
        var parts = in_proj.forward(x).split([_inner, _inner, _state, _state, _heads, _heads, _heads, _angles], -1);
        var (z, xs) = (parts[0], parts[1].view(b, t, _heads, p));                                // x [B, T, H, P]
        Tensor PerHead(Tensor bc, Tensor bias) => bc.unsqueeze(2) + bias;                        // [B, T, N] → [B, T, H, N]
        var k = PerHead(B_norm.forward(parts[2]), B_bias);
        var q = PerHead(C_norm.forward(parts[3]), C_bias);
        var dt = nn.functional.softplus(parts[4] + dt_bias);                                     // Δ [B, T, H]
        var a = (-nn.functional.softplus(parts[5])).clamp_max(-AFloor);                          // A [B, T, H]
        var theta = (parts[7].tanh() * Math.PI).unsqueeze(2).expand(-1, -1, _heads, -1);         // θ [B, T, H, R]

        var state = cache?.Get("state") is { } s ? new Mamba3State(s, cache.Get("key")!, cache.Get("value")!, cache.Get("angle")!) : null;
        var inputs = new Mamba3Inputs(q, k, xs, a * dt, dt, parts[6].sigmoid(), theta, state);
        var (y, final) = Mamba3Memory.Run(inputs, m => Kernel.Run(MatrixKernelKind.GatedLinear, m, _chunk, streaming: cache is not null));
        if (cache is not null)
        {
            cache.Set("state", final.S);
            cache.Set("key", final.Key);
            cache.Set("value", final.Value);
            cache.Set("angle", final.Angle);
        }
        y = (y + xs * D.view(1, 1, _heads, 1)).reshape(b, t, _inner);                           // + D x skip
        return out_proj.forward(y * nn.functional.silu(z)).MoveToOuterDisposeScope();
    }
}
