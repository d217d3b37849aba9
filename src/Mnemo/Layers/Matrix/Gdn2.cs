using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Gated DeltaNet-2 (Hatamizadeh, Choi, Kautz 2026, arXiv 2605.22791; docs/mechanisms.md#gated-deltanet-2): KDA whose
/// scalar β becomes two channel-wise gates, an erase gate b_t on the key channels and a write gate w_t on the value
/// channels,
/// <code>S_t = (I − k_t (b_t ⊙ k_t)ᵀ) Diag(exp g_t) S_{t−1} + k_t (w_t ⊙ v_t)ᵀ</code>
/// b_t = σ(b_proj x_t) (2σ with model.matrix.negative_eigenvalues), w_t = σ(w_proj x_t), both full-rank projections
/// without bias; the decay, features and sigmoid output gate are KDA's. b = w = β recovers KDA. Names follow fla's GDN2.
/// </summary>
public sealed class Gdn2 : Kda
{
    readonly Projection w_proj;

    public Gdn2(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(Gdn2), c, matrix, c.NumHeads * c.KeyHeadDim)
    {
        w_proj = new Projection(c.DModel, c.NumHeads * c.ValueHeadDim, hasBias: false);
        RegisterComponents();
    }

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) => (LogDecay(x), null);

    /// <summary>The erase vector b ⊙ k̂ and the written value w ⊙ v.</summary>
    protected override KernelInputs Rule(KernelInputs inputs, Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        var erase = Beta(b_proj.forward(x)).view(b, t, Heads, KeyDim);                      // [B, T, H, Dk]
        var write = w_proj.forward(x).sigmoid().view(b, t, Heads, ValueDim);                // [B, T, H, Dv]
        return inputs with { Erase = erase * inputs.K, V = write * inputs.V };
    }
}
