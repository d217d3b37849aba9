using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Linear attention (Katharopoulos et al. 2020; docs/mechanisms.md#linear-attention): S_t = S_{t−1} + φ(k_t)ᵀ v_t, o_t = φ(q_t) S_t,
/// no decay. φ is the feature map; with the normaliser, o_t = φ(q_t) S_t / (φ(q_t)·z_t + ε) where
/// z_t = Σ φ(k) is carried as one extra value column of ones, so the same kernel computes both.
/// </summary>
public class LinearAttention : MatrixMemoryMixer
{
    const double Eps = 1e-6;
    readonly FeatureMapKind _map;
    readonly bool _normalize;

    public LinearAttention(ModelConfig c, MatrixMemoryConfig matrix) : this(nameof(LinearAttention), c, matrix) => RegisterComponents();

    /// <summary>For a variant of linear attention (it registers its own parameters, these included).</summary>
    protected LinearAttention(string name, ModelConfig c, MatrixMemoryConfig matrix) : base(name, c, matrix, outputGate: false)
    {
        _map = matrix.FeatureMap;
        _normalize = matrix.Normalize;
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.GatedLinear;

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) => (null, null);

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => (Feature(q), Feature(k));

    /// <summary>φ over the last dimension (model.matrix.feature_map).</summary>
    protected Tensor Feature(Tensor x) => FeatureMap.Apply(_map, x);

    protected override Tensor Values(Tensor v) => _normalize ? cat([v, ones_like(v.narrow(-1, 0, 1))], -1) : v;

    protected override Tensor Read(Tensor o)
    {
        if (!_normalize) return o;
        long dv = o.shape[^1] - 1;
        return o.narrow(-1, 0, dv) / (o.narrow(-1, dv, 1) + Eps);
    }
}
