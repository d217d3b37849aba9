using Mnemo.Memory.Matrix;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Mamba-3 (Lahoti et al. 2026, arXiv 2603.15569; docs/mechanisms.md#mamba-3), as fla's Mamba3 layer builds it (SISO)
/// and state-spaces/mamba's with is_mimo (MIMO, rank R = model.matrix.mimo_rank): in_proj gives
/// [z, x, B, C, dd_dt, dd_A, trap, angles] (no short convolution), B and C R·N wide; Δ = softplus(dd_dt + dt_bias),
/// A = min(−softplus(dd_A), −10⁻⁴) per head and token, λ = σ(trap), θ = π tanh(angles) (⌊N/4⌋ rates shared by the
/// heads); each rank of B and C passes an RMSNorm and gets a bias per head and rank (B_bias, C_bias, starting at 1),
/// then the trapezoidal, rotated state update of <see cref="Mamba3Memory"/> with q = C, k = B and v = x (SISO) or
/// v_r = mimo_x_r ⊙ x (MIMO); SISO: y = (read + D x) ⊙ silu(z); MIMO: y = Σ_r mimo_o_r ⊙ (read_r + D v_r) ⊙
/// silu(mimo_z_r ⊙ z), with mimo_x, mimo_o starting at 1/R and mimo_z at 1; then out_proj.
/// Widths as Mamba-2's: d_inner = d_model·expand_v (head dim d_inner / num_heads), the state N = the key width per head.
/// </summary>
public sealed class Mamba3 : nn.Module<Tensor, Tensor>, IStreamingMixer, IMatrixMemoryLayer
{
    const double AFloor = 1e-4;
    readonly Projection in_proj, out_proj;
    readonly RMSNorm B_norm, C_norm;
    readonly Parameter dt_bias, B_bias, C_bias, D;
    readonly Parameter? mimo_x, mimo_z, mimo_o;                                                  // [H, R, P], MIMO only
    readonly int _heads, _inner, _state, _angles, _chunk, _rank;

    /// <inheritdoc/>
    public IMatrixKernel Kernel { get; set; } = DirectMatrixKernel.Instance;

    public Mamba3(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(Mamba3))
    {
        _heads = c.NumHeads;
        _inner = c.ValueHeadDim * c.NumHeads;
        _state = c.KeyHeadDim;
        _angles = RotaryRates(_state);
        _chunk = matrix.ChunkSize;
        _rank = matrix.MimoRank;
        in_proj = new Projection(c.DModel, 2 * _inner + 2 * _rank * _state + 3 * _heads + _angles, hasBias: false);
        dt_bias = MambaGate.Initial(_heads, matrix.DtMin, matrix.DtMax).DtBias;
        (B_norm, C_norm) = (new RMSNorm(_state, c.NormEps), new RMSNorm(_state, c.NormEps));
        long[] bias = _rank == 1 ? [_heads, _state] : [_heads, _rank, _state];                   // SISO keeps fla's [H, N]
        (B_bias, C_bias) = (nn.Parameter(ones(bias)), nn.Parameter(ones(bias)));
        D = nn.Parameter(ones(_heads));
        if (_rank > 1)
        {
            long p = _inner / _heads;
            mimo_x = nn.Parameter(full(_heads, _rank, p, 1.0 / _rank));
            mimo_z = nn.Parameter(ones(_heads, _rank, p));
            mimo_o = nn.Parameter(full(_heads, _rank, p, 1.0 / _rank));
        }
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
        var parts = in_proj.forward(x).split([_inner, _inner, _rank * _state, _rank * _state, _heads, _heads, _heads, _angles], -1);
        var (z, xs) = (parts[0], parts[1].view(b, t, _heads, p));                                // x [B, T, H, P]
        // each rank of B, C normed, then its bias per head: [B, T, R·N] → [B, T, R, H, N] → rows [B, T·R, H, N]
        Tensor Rows(RMSNorm norm, Tensor bc, Tensor bias) =>
            (norm.forward(bc.view(b, t, _rank, 1, _state)) + bias.view(_heads, _rank, _state).transpose(0, 1)).flatten(1, 2);
        var k = Rows(B_norm, parts[2], B_bias);
        var q = Rows(C_norm, parts[3], C_bias);
        var v = _rank == 1 ? xs : (xs.unsqueeze(2) * mimo_x!.transpose(0, 1)).flatten(1, 2);    // v_r = mimo_x_r ⊙ x
        var dt = nn.functional.softplus(parts[4] + dt_bias);                                     // Δ [B, T, H]
        var a = (-nn.functional.softplus(parts[5])).clamp_max(-AFloor);                          // A [B, T, H]
        var theta = (parts[7].tanh() * Math.PI).unsqueeze(2).expand(-1, -1, _heads, -1);         // θ [B, T, H, A]

        var state = cache?.Get("state") is { } s ? new Mamba3State(s, cache.Get("key")!, cache.Get("value")!, cache.Get("angle")!) : null;
        var inputs = new Mamba3Inputs(q, k, v, a * dt, dt, parts[6].sigmoid(), theta, state);
        var (y, final) = Mamba3Memory.Run(inputs, m => Kernel.Run(MatrixKernelKind.GatedLinear, m, _chunk, streaming: cache is not null));
        if (cache is not null)
        {
            cache.Set("state", final.S);
            cache.Set("key", final.Key);
            cache.Set("value", final.Value);
            cache.Set("angle", final.Angle);
        }
        y = y + v * D.view(1, 1, _heads, 1);                                                     // + D v skip, per row
        if (_rank == 1) return out_proj.forward(y.reshape(b, t, _inner) * nn.functional.silu(z)).MoveToOuterDisposeScope();
        var zr = z.view(b, t, 1, _heads, p) * mimo_z!.transpose(0, 1);                            // z_r [B, T, R, H, P]
        var mixed = (y.view(b, t, _rank, _heads, p) * nn.functional.silu(zr) * mimo_o!.transpose(0, 1)).sum([2]);
        return out_proj.forward(mixed.reshape(b, t, _inner)).MoveToOuterDisposeScope();
    }
}
