using Mnemo.IO;
using Mnemo.Memory.Matrix;

namespace Mnemo.Layers;

/// <summary>
/// model.matrix: the settings of the matrix memories (linear_attention, retnet, gla, mamba2, delta_net,
/// gated_delta_net; docs/mechanisms.md#the-two-matrix-kernels) and of the matrix memories a mixture of memories holds.
/// </summary>
public sealed record MatrixMemoryConfig : IValidatedConfig
{
    [Help("linear attention feature map: identity, elu_p1, relu or taylor (Based's 2nd-order expansion)")]
    public FeatureMapKind FeatureMap { get; init; } = FeatureMapKind.EluP1;
    [Help("linear attention: divide by the normaliser φ(q)·Σφ(k) (else only the output RMSNorm)")] public bool Normalize { get; init; }
    [Help("chunk size of the chunkwise-parallel memory kernels"), Range(1, 1024)] public int ChunkSize { get; init; } = 64;
    [Help("mamba2, gated_delta_net, mom: smallest initial step dt of the decay g = −A·softplus(a + dt_bias) " +
        "(dt log-uniform in [dt_min, dt_max], Mamba-2's initialisation)"), Range(1e-8, 10)]
    public double DtMin { get; init; } = 1e-3;
    [Help("mamba2, gated_delta_net, mom: largest initial step dt (with A ~ U(1, 16), dt_max 0.1 forgets most of a " +
        "write within ~10 tokens at the start of training)"), Range(1e-8, 10)]
    public double DtMax { get; init; } = 0.1;

    public IEnumerable<(string, string)> Validate()
    {
        if (DtMin > DtMax) yield return ("dt_min", $"{DtMin} exceeds dt_max {DtMax}");
    }
}
