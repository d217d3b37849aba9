using Mnemo.Memory.Matrix;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// RWKV-7 "Goose"'s time mixing (Peng et al. 2025, arXiv 2503.14456; docs/mechanisms.md#rwkv-7), on the generalized delta
/// rule with a transition vector of its own, its erase read before the decay:
/// <code>S_t = (Diag(w_t) − (κ̂_t ⊙ a_t) κ̂_tᵀ) S_{t−1} + k̃_t v_tᵀ,   o_t = S_tᵀ r_t</code>
/// Every input is a token-shift mix x + (x_{t−1} − x) ⊙ μ; log w = −e^{−1/2} σ(w_lora x_w) (w ∈ (0.545, 1));
/// a = σ(a_lora x_a) (the in-context learning rate); κ̂ = L2(k ⊙ k_k) per head; k̃ = k ⊙ (1 + (a − 1) ⊙ k_a); the first
/// RWKV-7 layer's values v₁ reach the later ones, v ← v + (v₁ − v) ⊙ σ(v_lora x_v) (the value residual). The read is
/// group-normalised per head, gets the bonus (Σ_d r ⊙ k̃ ⊙ r_k) v, is gated by g_lora x_g, then o_proj. Names follow fla's
/// RWKV7Attention.
/// </summary>
public sealed class Rwkv7 : nn.Module<Tensor, Tensor>, IStreamingMixer, IValueResidual
{
    /// <summary>e^{−1/2}: the largest decay rate, so w = exp(−e^{−1/2} σ(·)) ≥ 0.545.</summary>
    public const double DecayBound = 0.6065306597126334;

    readonly Parameter x_r, x_w, x_k, x_v, x_a, x_g, k_k, k_a, r_k;
    readonly Projection r_proj, k_proj, v_proj, o_proj;
    readonly Sequential w_lora, a_lora, g_lora;
    readonly Sequential? v_lora;                     // absent on the first RWKV-7 layer, whose values the others mix in
    readonly GroupNorm g_norm;
    readonly int _heads, _keyDim, _valueDim, _chunk;

    /// <param name="first">whether this is the model's first RWKV-7 layer (its values are the residual's)</param>
    /// <param name="layer">its place among the model's <paramref name="layers"/> layers (0 … layers − 1): RWKV-7's initial
    /// token-shift mixes, decay and norm weight depend on depth</param>
    public Rwkv7(ModelConfig c, MatrixMemoryConfig matrix, bool first, int layer, int layers) : base(nameof(Rwkv7))
    {
        (_heads, _keyDim, _valueDim, _chunk) = (c.NumHeads, c.KeyHeadDim, c.ValueHeadDim, matrix.ChunkSize);
        int d = c.DModel, keys = _heads * _keyDim, values = _heads * _valueDim;
        var start = new Initial(layer, layers, _keyDim);
        Parameter Mix(double p) => nn.Parameter(start.Mix(d, p));
        (x_r, x_w, x_k, x_v, x_a, x_g) = (Mix(0.2), Mix(0.9), Mix(0.7), Mix(0.7), Mix(0.9), Mix(0.2));
        k_k = nn.Parameter(0.71 - 0.1 * Initial.Linear(keys));
        k_a = nn.Parameter(full(keys, 1.02));
        r_k = nn.Parameter(full(_heads, _keyDim, -0.04));
        r_proj = new Projection(d, keys, hasBias: false);
        k_proj = new Projection(d, keys, hasBias: false);
        v_proj = new Projection(d, values, hasBias: false);
        o_proj = new Projection(values, d, hasBias: false);
        double root = Math.Sqrt(d), scale = _keyDim / 64.0;
        w_lora = LoRA(d, keys, Rank(2.5 * root * scale), nn.Tanh(), start.DecayBias(keys));
        a_lora = LoRA(d, keys, Rank(2.5 * root * scale), nn.Identity(), -0.19 + 0.3 * start.Zigzag(keys) + 0.4 * Initial.Linear(keys));
        if (!first) v_lora = LoRA(d, values, Rank(1.7 * root * scale), nn.Identity(), 0.73 - 0.4 * Initial.Linear(values));
        g_lora = LoRA(d, values, Rank(5 * root), nn.Sigmoid(), null);
        g_norm = nn.GroupNorm(_heads, values, eps: _keyDim * 1e-5, affine: true);
        using (no_grad())
        {
            g_norm.weight!.fill_(Math.Pow((layer + 1.0) / layers, 0.7));
            g_norm.bias!.zero_();                    // TorchSharp leaves GroupNorm's bias uninitialised (found by the tests)
        }
        RegisterComponents();
    }

    /// <summary>fla's default LoRA ranks: a multiple of 32, at least 32.</summary>
    static int Rank(double target) => Math.Max(32, (int)Math.Round(target / 32) * 32);

    /// <summary>fla's LoRA: d → rank (no bias) → activation → width (with the given bias, or none).</summary>
    static Sequential LoRA(int d, int width, int rank, nn.Module<Tensor, Tensor> activation, Tensor? bias)
    {
        var up = new Projection(rank, width, hasBias: bias is not null);
        if (bias is not null)
            using (no_grad())
                up.Bias!.copy_(bias);
        return nn.Sequential(new Projection(d, rank, hasBias: false), activation, up);
    }

    /// <inheritdoc/>
    public Tensor? FirstValues { get; set; }

    bool First => v_lora is null;

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        // token shift: x_{t−1} − x_t, the token before the first from the cache (zero at the start)
        var previous = cache?.Get("shift") ?? zeros(b, 1, x.shape[2], x.dtype, x.device);
        var shift = cat([previous, x.narrow(1, 0, t - 1)], 1) - x;                            // [B, T, D]
        if (cache is not null) cache.Set("shift", x.narrow(1, t - 1, 1).detach());
        Tensor Mixed(Parameter mu) => x + shift * mu;

        Tensor Heads(Tensor y, long dim) => y.view(b, t, _heads, dim);                           // [B, T, H, dim]
        var r = Heads(r_proj.forward(Mixed(x_r)), _keyDim);
        var logDecay = Heads(w_lora.forward(Mixed(x_w)).sigmoid() * -DecayBound, _keyDim);     // log w per key channel
        var k = k_proj.forward(Mixed(x_k));
        var xv = Mixed(x_v);
        var v = v_proj.forward(xv);
        // The first layer's values outlive this call (the later layers of the pass read them); the layer stack disposes them.
        if (First) FirstValues = v.DetachFromDisposeScope();
        else
        {
            var v1 = FirstValues ?? throw new MnemoException("an rwkv7 layer after the first needs the first rwkv7 layer's values: "
                + "run it inside a model's layer stack (LanguageModel)");
            v = v + (v1 - v) * v_lora!.forward(xv).sigmoid();                                  // lerp(v, v₁, σ(v_lora x_v))
        }
        var a = a_lora.forward(Mixed(x_a)).sigmoid();                                          // in-context learning rate
        var gate = g_lora.forward(Mixed(x_g));
        var kappa = MemoryMixer.UnitNorm(Heads(k * k_k, _keyDim), 1.0);                        // κ̂ [B, T, H, Dk]
        var kTilde = Heads(k * (1 + (a - 1) * k_a), _keyDim);                                   // k̃
        var vh = Heads(v, _valueDim);
        var inputs = new KernelInputs(r, kTilde, vh, logDecay, null, cache?.Get("state"), Erase: kappa,
            Transition: kappa * Heads(a, _keyDim), ReadBeforeDecay: true);
        var (o, state) = DirectMatrixKernel.Instance.Run(MatrixKernelKind.Delta, inputs, _chunk, streaming: cache is not null);
        if (cache is not null) cache.Set("state", state);

        // GroupNorm over each head's channels, one token at a time ([B·T, H·Dv, 1]: TorchSharp's takes [N, C, L])
        var normed = g_norm.forward(o.reshape(b * t, _heads * _valueDim, 1)).view(b, t, _heads, _valueDim);
        var bonus = (r * kTilde * r_k).sum(-1, keepdim: true) * vh;                             // (Σ_d r k̃ r_k) v
        var y = (normed + bonus).reshape(b, t, _heads * _valueDim) * gate;
        return o_proj.forward(y).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// RWKV-7's initial values (fla's RWKV7Attention, after the official code), by depth: with ρ = layer/(layers − 1) and
    /// ρ' = 1 − layer/layers, the token-shift mixes 1 − (n/D)^{p ρ'}, the decay's bias −6 + 6 (n/(N−1))^{1 + ρ^{0.3}} + 0.5
    /// + 2.5 z_n (z a zigzag over each head's channels, squared with its sign), the learning rate's −0.19 + 0.3 z + 0.4 l
    /// and the value residual's 0.73 − 0.4 l (l the channel's place, −½ … ½).
    /// </summary>
    sealed class Initial(int layer, int layers, int headDim)
    {
        readonly double _depth = layers > 1 ? (double)layer / (layers - 1) : 0, _height = 1 - (double)layer / layers;

        /// <summary>1 − (n/D)^{p ρ'}, n = 0 … D − 1.</summary>
        public Tensor Mix(int d, double p) => 1 - pow(arange(d, dtype: ScalarType.Float32) / d, p * _height);

        /// <summary>l_n = n/(N − 1) − ½.</summary>
        public static Tensor Linear(int n) => arange(n, dtype: ScalarType.Float32) / Math.Max(1, n - 1) - 0.5;

        /// <summary>z_n = s |s| with s the channel's place within its head, −1 … 1.</summary>
        public Tensor Zigzag(int n)
        {
            double half = Math.Max(1, (headDim - 1) / 2.0);
            var s = (arange(n, dtype: ScalarType.Float32) % headDim - (headDim - 1) / 2.0) / half;
            return s * s.abs();
        }

        public Tensor DecayBias(int n) =>
            -6 + 6 * pow(arange(n, dtype: ScalarType.Float32) / Math.Max(1, n - 1), 1 + Math.Pow(_depth, 0.3)) + 0.5 + 2.5 * Zigzag(n);
    }
}
