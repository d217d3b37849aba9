using Mnemo.Memory.Matrix;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// DeltaNet (Schlag et al. 2021; Yang et al. 2024; docs/mechanisms.md#deltanet): the delta rule with no decay,
/// q and k L2-normalised (which keeps every transition I − β kᵀk non-expansive), β_t = σ(b_proj x_t).
/// </summary>
public sealed class DeltaNet : MatrixMemoryMixer
{
    readonly Projection b_proj;

    public DeltaNet(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(DeltaNet), c, matrix, outputGate: false, householder: true)
    {
        b_proj = new Projection(c.DModel, c.NumHeads * Writes, hasBias: false);                // one β per write
        RegisterComponents();
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.Delta;

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => UnitNormFeatures(q, k);

    protected override Projection[] RidingProjections => [b_proj];

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) => (null, Beta(Projected(b_proj, x)));
}
