using Mnemo.Memory.Matrix;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Gated DeltaNet (Yang, Kautz, Hatamizadeh 2024; docs/mechanisms.md#gated-deltanet): the delta rule with a Mamba-2-style
/// per-head decay g_t = −exp(A_log) · softplus(a_proj x_t + dt_bias), β_t = σ(b_proj x_t), L2-normalised q, k,
/// and the output gated by silu(g_proj x). Not sealed: log-linear Gated DeltaNet keeps its gates and changes its memory.
/// </summary>
public class GatedDeltaNet : MatrixMemoryMixer
{
    // private protected, not private: TorchSharp registers a module's fields by reflection, which does not see a base
    // class's private fields, and log-linear Gated DeltaNet derives from this class.
    private protected readonly Projection a_proj, b_proj;
    private protected readonly Parameter A_log, dt_bias;

    public GatedDeltaNet(ModelConfig c, MatrixMemoryConfig matrix) : this(nameof(GatedDeltaNet), c, matrix) => RegisterComponents();

    /// <remarks>Registers nothing: the concrete class registers its components once they all exist.</remarks>
    protected GatedDeltaNet(string name, ModelConfig c, MatrixMemoryConfig matrix)
        : base(name, c, matrix, outputGate: true, householder: true)
    {
        a_proj = new Projection(c.DModel, c.NumHeads, hasBias: false);
        b_proj = new Projection(c.DModel, c.NumHeads * Writes, hasBias: false);                // one β per write
        (A_log, dt_bias) = MambaGate.Initial(c.NumHeads, matrix.DtMin, matrix.DtMax);
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.Delta;

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => UnitNormFeatures(q, k);

    protected override Projection[] RidingProjections => [a_proj, b_proj];

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) =>
        (MambaGate.LogDecay(Projected(a_proj, x), A_log, dt_bias), Beta(Projected(b_proj, x)));
}
