using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// RetNet's multi-scale retention (Sun et al. 2023; docs/mechanisms.md#retnet): a fixed decay per head,
/// γ_h = 1 − 2^{−5−h}, rotary positions on q and k, q scaled by dk^{−1/2}, output gated by silu(g_proj x).
/// </summary>
public sealed class RetNet : MatrixMemoryMixer
{
    readonly double[] _logDecay;

    public RetNet(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(RetNet), c, matrix, outputGate: true)
    {
        _logDecay = Enumerable.Range(0, c.NumHeads).Select(h => Math.Log(1 - Math.Pow(2, -5 - h))).ToArray();
        RegisterComponents();
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.GatedLinear;

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) =>
        (RotaryEmbedding.Apply(q, position) * Math.Pow(KeyDim, -0.5), RotaryEmbedding.Apply(k, position));

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) =>
        (tensor(_logDecay, dtype: x.dtype, device: x.device).expand(x.shape[0], x.shape[1], -1), null);
}
