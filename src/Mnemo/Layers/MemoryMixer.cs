using Mnemo.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// The token mixer around any associative memory (matrix or deep): projections (q_proj, k_proj, v_proj), optional
/// depthwise short convolutions (q_conv1d, k_conv1d, v_conv1d), the rule's feature maps, the memory itself, a
/// per-head RMSNorm on the output (o_norm), optionally gated by silu(g_proj x), and o_proj. Names follow fla.
/// A subclass supplies the memory (<see cref="Remember"/>) and overrides only what makes its rule that rule.
/// </summary>
public abstract class MemoryMixer : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    protected readonly Projection q_proj, k_proj, v_proj, o_proj;
    protected readonly Projection? g_proj;
    protected readonly ShortConvolution? q_conv1d, k_conv1d, v_conv1d;
    protected readonly GatedRMSNorm o_norm;

    protected int Heads { get; }
    protected int KeyDim { get; }      // per head
    protected int ValueDim { get; }    // per head

    /// <summary>Keys and values written per token (DeltaProduct's Householder steps; 1 for every other rule).</summary>
    protected int Writes { get; }

    /// <param name="outputGate">the mechanism's own choice of the silu(g_proj x) output gate; model.output_gate overrides it</param>
    /// <param name="writes">keys and values per token: k_proj and v_proj are that many times wider</param>
    protected MemoryMixer(string name, ModelConfig c, bool outputGate, int writes = 1) : base(name)
    {
        Heads = c.NumHeads;
        KeyDim = c.KeyHeadDim;
        ValueDim = c.ValueHeadDim;
        Writes = writes;
        long keys = Heads * KeyDim, values = Heads * ValueDim;
        q_proj = new Projection(c.DModel, keys, hasBias: false);
        k_proj = new Projection(c.DModel, keys * writes, hasBias: false);
        v_proj = new Projection(c.DModel, values * writes, hasBias: false);
        if (c.ShortConv)
        {
            q_conv1d = new ShortConvolution(keys, c.ConvSize);
            k_conv1d = new ShortConvolution(keys * writes, c.ConvSize);
            v_conv1d = new ShortConvolution(values * writes, c.ConvSize);
        }
        if (c.OutputGate ?? outputGate) g_proj = OutputGateProjection(c, values);
        o_norm = new GatedRMSNorm(ValueDim, c.NormEps);
        o_proj = new Projection(values, c.DModel, hasBias: false);
        // Subclasses register their own parameters and call RegisterComponents again; that also picks these up.
    }

    /// <summary>
    /// The memory: writes (k, v) and reads with q, all [B, T, H, D] after features and values, from the layer input
    /// x [B, T, D] (for gates). With a cache, continues from and updates the memory state it holds.
    /// Returns the read o [B, T, H, Dv].
    /// </summary>
    protected abstract Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache);

    /// <summary>Feature maps / normalisation of q and k per head ([B, T, H, Dk]); q arrives unscaled.</summary>
    protected virtual (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => (q * Math.Pow(KeyDim, -0.5), k);

    /// <summary>
    /// The delta rules' features: q and k L2-normalised (‖k‖ = 1 keeps every transition I − β kᵀk non-expansive),
    /// q then scaled by dk^{−1/2}.
    /// </summary>
    protected (Tensor Q, Tensor K) UnitNormFeatures(Tensor q, Tensor k) => UnitNorm(q, k);

    /// <summary><see cref="UnitNormFeatures"/> for any layer: q, k [..., Dk] L2-normalised, q scaled by Dk^{−1/2}.</summary>
    public static (Tensor Q, Tensor K) UnitNorm(Tensor q, Tensor k) =>
        (UnitNorm(q, Math.Pow(q.shape[^1], -0.5)), UnitNorm(k, 1.0));

    /// <summary>scale · x / sqrt(‖x‖₂² + 10⁻⁶) over the last dimension, fla's l2norm
    /// (docs/mechanisms.md#which-rule-runs-which-kernel; fused on the CPU in fp32, FusedNorms).</summary>
    public static Tensor UnitNorm(Tensor x, double scale)
    {
        const double eps = 1e-6;
        if (FusedNorms.Applies(x)) return FusedNorms.L2Norm(x, scale, eps);
        return x * (x.square().sum(-1, keepdim: true) + eps).rsqrt() * scale;
    }

    /// <summary>The output of the memory read, o [B, T, H, Dv], before o_norm — linear attention's normaliser hooks here.</summary>
    protected virtual Tensor Read(Tensor o) => o;

    /// <summary>Values as stored ([B, T, H, Dv]) — linear attention's normaliser appends a column of ones here.</summary>
    protected virtual Tensor Values(Tensor v) => v;

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], position = cache?.Position ?? 0;
        try
        {
            var (q, k, v, gate) = Inputs(x, cache);
            // k, v [B, T, W·H·D] → [B, T·W, H, D]: a token's W writes in a row (W = Writes, 1 but for DeltaProduct).
            (q, k) = Features(q.view(b, t, Heads, KeyDim), k.reshape(b, t * Writes, Heads, KeyDim), position); // [B, T, H, Dk']
            v = Values(v.reshape(b, t * Writes, Heads, ValueDim));                                              // [B, T·W, H, Dv']
            var o = Remember(q, k, v, x, cache);
            return GatedOutput(o, gate, x).MoveToOuterDisposeScope();
        }
        finally
        {
            _riding = null;
        }
    }

    /// <summary>
    /// Projections of the layer input that join the q, k, v product and ride through the convolution unchanged: a rule's
    /// gate pre-activations (Gated DeltaNet's a_proj and b_proj). The rule reads them with <see cref="Projected"/>. None
    /// by default; they join only when none has a bias or a low-rank update.
    /// </summary>
    protected virtual Projection[] RidingProjections => [];

    /// <summary>This forward's outputs of the riding projections, from the joined product (null outside a forward).</summary>
    Dictionary<Projection, Tensor>? _riding;

    /// <summary>p x [B, T, out]: this forward's slice of the joined product when p rode along, else p's own product.</summary>
    protected Tensor Projected(Projection p, Tensor x) => _riding is not null && _riding.TryGetValue(p, out var y) ? y : p.forward(x);

    /// <summary>
    /// q [B, T, H·Dk], k and v [B, T, W·H·D] (W = <see cref="Writes"/>) of x after the short convolutions, and the output
    /// gate's g_proj x (null without a gate); the riding projections' outputs go to <see cref="Projected"/>. One product
    /// with the projections' weights side by side, and one convolution over q, k and v's channels together. That is a
    /// product and a convolution each, up to rounding, in a third of the operations, and a decoded token's time is mostly
    /// the cost of operations, not their arithmetic (docs/benchmarks.md#fewer-operations-per-decoded-token). A decoded
    /// token (one token, gradients off) takes the side-by-side weights from the cache. A projection with a low-rank
    /// update (training.lora) or a bias runs on its own.
    /// </summary>
    (Tensor Q, Tensor K, Tensor V, Tensor? Gate) Inputs(Tensor x, LayerCache? cache)
    {
        bool gateJoins = g_proj is { Bias: null, HasLowRank: false };
        Projection[] riding = RidingProjections.All(p => p is { Bias: null, HasLowRank: false }) ? RidingProjections : [];
        Projection[] joined = [q_proj, k_proj, v_proj, .. gateJoins ? [g_proj!] : Array.Empty<Projection>(), .. riding];
        if (joined.Any(p => p.HasLowRank))
            return (Convolved(q_conv1d, q_proj.forward(x), cache, "q_conv"), Convolved(k_conv1d, k_proj.forward(x), cache, "k_conv"),
                Convolved(v_conv1d, v_proj.forward(x), cache, "v_conv"), g_proj?.forward(x));
        bool decoding = cache is not null && x.shape[1] == 1 && !is_grad_enabled();
        Tensor Joined(string name, Func<Tensor> build) => decoding ? cache!.Derived(name, build) : build();

        var weight = Joined("in_proj", () => cat(joined.Select(p => (Tensor)p.Weight).ToArray(), 0));     // [(1+W)HDk + WHDv (+ …), D]
        long keys = Heads * KeyDim, values = Heads * ValueDim, width = keys + Writes * (keys + values);
        var projected = MixedPrecision.Linear(x, weight, null);                                  // [B, T, width (+ gate, riding)]
        long[] sizes = [keys, Writes * keys, Writes * values, .. joined.Skip(3).Select(p => p.Weight.shape[0])];
        // The channels past q, k and v (the output gate's, the riding projections') ride through the convolution
        // unchanged: one tensor in and out, no slice to copy forward or to fill with zeros backward. A decoded token
        // slices instead, which is one operation fewer.
        bool ride = !decoding;
        var mixed = ride || sizes.Length == 3 ? projected : projected.narrow(-1, 0, width);     // [B, T, width (+ …)]
        if (q_conv1d is not null)
        {
            var taps = Joined("qkv_conv1d", () => cat([q_conv1d.Weight, k_conv1d!.Weight, v_conv1d!.Weight], 0));
            mixed = ShortConvolution.Convolve(mixed, taps, null, cache, "qkv_conv");
        }
        var parts = (ride ? mixed : projected).split(sizes, -1);
        var qkv = ride ? parts : mixed.split(sizes[..3], -1);
        _riding = riding.Select((p, i) => (p, parts[parts.Length - riding.Length + i])).ToDictionary();
        return (qkv[0], qkv[1], qkv[2], gateJoins ? parts[3] : g_proj?.forward(x));
    }

    static Tensor Convolved(ShortConvolution? conv, Tensor x, LayerCache? cache, string key) =>
        conv is null ? x : conv.Forward(x, cache, key);

    /// <summary>silu(z) = 1 at z = 1.2784645…: the bias of an output gate that starts open.</summary>
    public const double OpenGateBias = 1.2784645427610738;

    /// <summary>
    /// g_proj [D → values]: fla's (no bias), or with <see cref="ModelConfig.OutputGateOpen"/> a bias at
    /// <see cref="OpenGateBias"/> (its weights are zeroed after the model's initialisation, LanguageModel).
    /// </summary>
    public static Projection OutputGateProjection(ModelConfig c, long values)
    {
        var gate = new Projection(c.DModel, values, hasBias: c.OutputGateOpen);
        if (c.OutputGateOpen)
            using (no_grad())
                gate.Bias!.fill_(OpenGateBias);
        return gate;
    }

    /// <summary>A memory read o [B, T, H, Dv] → o_norm (gated by silu(g_proj x)) → o_proj → [B, T, D].</summary>
    protected Tensor Output(Tensor o, Tensor x) => GatedOutput(o, g_proj?.forward(x), x);

    /// <summary><see cref="Output"/> with g_proj x already computed ([B, T, H·Dv]; null without a gate).</summary>
    Tensor GatedOutput(Tensor o, Tensor? gate, Tensor x)
    {
        long b = o.shape[0], t = o.shape[1];
        var y = GateOutput(o_norm.forward(Read(o), gate?.view(b, t, Heads, ValueDim)), x);
        return o_proj.forward(y.reshape(b, t, Heads * ValueDim));                                // [B, T, H·Dv]
    }

    /// <summary>A rule's own gate on the normalised read y [B, T, H, Dv] from the layer input x (KDA's sigmoid gate); none
    /// by default.</summary>
    protected virtual Tensor GateOutput(Tensor y, Tensor x) => y;
}
