using Mnemo.Memory.Matrix;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Gated linear attention (Yang et al. 2023; docs/mechanisms.md#gla): a data-dependent decay per key channel from a
/// low-rank projection, g_t = logsigmoid(gk_proj x_t) / 16 (so α_t = σ(·)^{1/16}), q scaled by dk^{−1/2}, output
/// gated by silu(g_proj x).
/// </summary>
public sealed class Gla : MatrixMemoryMixer
{
    const int GateRank = 16;
    const double GateNormalizer = 16;
    readonly Sequential gk_proj;

    public Gla(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(Gla), c, matrix, outputGate: true)
    {
        gk_proj = nn.Sequential(new Projection(c.DModel, GateRank, hasBias: false),
            new Projection(GateRank, c.NumHeads * c.KeyHeadDim, hasBias: true));
        RegisterComponents();
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.GatedLinear;

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position)
    {
        var g = nn.functional.logsigmoid(gk_proj.forward(x)) / GateNormalizer;   // [B, T, H·Dk]
        return (g.view(x.shape[0], x.shape[1], Heads, KeyDim), null);
    }
}
