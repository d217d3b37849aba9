using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>Non-linearity between the memory MLP's layers.</summary>
public enum MemoryActivation { Gelu, Silu }

/// <summary>
/// The memory's architecture (Titans §3.1, docs/deep-memories.md#1-what-runs): M_W(x) = W_L σ(… σ(x W_1)) with row vectors, so each
/// layer's weight is [in, out] (key-major like the matrix memories; depth 1 is the matrix memory S with M(k) = k S).
/// With <see cref="ResidualNorm"/>, M(x) = x + LN(mlp(x)) with a parameter-free LayerNorm
/// LN(f) = (f − mean f) / √(var f + 1e−5) over the channels (the TTT / lucidrains wrapper; needs Dk = Dv). Weights carry leading
/// batch dims: [B, H, in, out] (shared by a chunk's tokens) or [B, H, N, in, out] (one set per token). Activations are [B, H, N, D].
/// </summary>
public sealed record MemoryMlp(long KeyDim, long ValueDim, int Depth, long Hidden, MemoryActivation Activation, bool ResidualNorm)
{
    const double NormEps = 1e-5;

    /// <summary>(in, out) of every layer: depth 1 is [Dk, Dv]; deeper memories go Dk → Hidden → … → Dv.</summary>
    public (long In, long Out)[] Layers => Enumerable.Range(0, Depth)
        .Select(l => (l == 0 ? KeyDim : Hidden, l == Depth - 1 ? ValueDim : Hidden)).ToArray();

    /// <summary>Runs the MLP with a caller-supplied linear map per layer (shared weights, per-token weights, or the
    /// chunk's dual form all fit), keeping each layer's input and pre-activation for the closed-form backward.</summary>
    public (Tensor Y, Tensor[] Inputs, Tensor[] PreActivations) Forward(Tensor x, Func<int, Tensor, Tensor> layer)
    {
        var inputs = new Tensor[Depth];
        var pre = new Tensor[Depth];
        var a = x;
        for (int l = 0; l < Depth; l++)
        {
            inputs[l] = a;
            pre[l] = layer(l, a);
            a = l == Depth - 1 ? pre[l] : Activate(pre[l]);
        }
        return (ResidualNorm ? x + LayerNorm(a) : a, inputs, pre);
    }

    /// <summary>y = M_W(x) with weights shared by all N tokens: w[l] [B, H, in, out], x [B, H, N, Dk].</summary>
    public Tensor Apply(IReadOnlyList<Tensor> w, Tensor x) => Forward(x, (l, a) => a.matmul(w[l])).Y;

    /// <summary>y_n = M_{W_n}(x_n) with one weight set per token: w[l] [B, H, N, in, out], x [B, H, N, Dk].</summary>
    public Tensor ApplyPerToken(IReadOnlyList<Tensor> w, Tensor x) =>
        Forward(x, (l, a) => a.unsqueeze(-2).matmul(w[l]).squeeze(-2)).Y;

    /// <summary>
    /// Per-token gradients of an objective at shared weights w, in closed form and batched over the tokens: the
    /// gradient of ℓ(M_W(k_n), v_n) w.r.t. layer l is the rank-1 matrix inputs[l]_nᵀ deltas[l]_n (no autograd).
    /// <paramref name="outputError"/> maps the memory's output y [B, H, N, Dv] to ∂ℓ/∂y.
    /// </summary>
    public (Tensor[] Inputs, Tensor[] Deltas) Gradients(IReadOnlyList<Tensor> w, Tensor k, Func<Tensor, Tensor> outputError)
    {
        var (y, inputs, pre) = Forward(k, (l, a) => a.matmul(w[l]));
        var error = outputError(y);                                         // ∂ℓ/∂y         [B, H, N, Dv]
        if (ResidualNorm) error = LayerNormBackward(pre[Depth - 1], error);
        var deltas = new Tensor[Depth];
        for (int l = Depth - 1; l >= 0; l--)
        {
            deltas[l] = error;                                              // ∂ℓ/∂z_l       [B, H, N, out]
            if (l > 0) error = error.matmul(w[l].transpose(-1, -2)) * Derivative(pre[l - 1]);
        }
        return (inputs, deltas);
    }

    public Tensor Activate(Tensor z) => Activation == MemoryActivation.Gelu ? nn.functional.gelu(z) : nn.functional.silu(z);

    /// <summary>σ'(z): GELU Φ(z) + z φ(z) (exact erf form, as torch's gelu), SiLU s(1 + z(1 − s)).</summary>
    public Tensor Derivative(Tensor z)
    {
        if (Activation == MemoryActivation.Silu)
        {
            var s = z.sigmoid();
            return s * (1 + z * (1 - s));
        }
        var cdf = 0.5 * (1 + special.erf(z * Math.Sqrt(0.5)));
        var pdf = (-0.5 * z.square()).exp() * (1 / Math.Sqrt(2 * Math.PI));
        return cdf + z * pdf;
    }

    static Tensor LayerNorm(Tensor f)
    {
        var centred = f - f.mean([-1], keepdim: true);
        return centred * (centred.square().mean([-1], keepdim: true) + NormEps).rsqrt();
    }

    /// <summary>∂ℓ/∂f from ∂ℓ/∂n for n = LN(f): (g − mean g − n·mean(g ⊙ n)) / σ.</summary>
    static Tensor LayerNormBackward(Tensor f, Tensor g)
    {
        var centred = f - f.mean([-1], keepdim: true);
        var inverseSigma = (centred.square().mean([-1], keepdim: true) + NormEps).rsqrt();
        var n = centred * inverseSigma;
        return (g - g.mean([-1], keepdim: true) - n * (g * n).mean([-1], keepdim: true)) * inverseSigma;
    }
}
