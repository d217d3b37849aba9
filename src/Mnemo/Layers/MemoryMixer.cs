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

    /// <param name="outputGate">the mechanism's own choice of the silu(g_proj x) output gate; model.output_gate overrides it</param>
    protected MemoryMixer(string name, ModelConfig c, bool outputGate) : base(name)
    {
        Heads = c.NumHeads;
        KeyDim = c.KeyHeadDim;
        ValueDim = c.ValueHeadDim;
        long keys = Heads * KeyDim, values = Heads * ValueDim;
        q_proj = new Projection(c.DModel, keys, hasBias: false);
        k_proj = new Projection(c.DModel, keys, hasBias: false);
        v_proj = new Projection(c.DModel, values, hasBias: false);
        if (c.ShortConv)
        {
            q_conv1d = new ShortConvolution(keys, c.ConvSize);
            k_conv1d = new ShortConvolution(keys, c.ConvSize);
            v_conv1d = new ShortConvolution(values, c.ConvSize);
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
        Tensor q = q_proj.forward(x), k = k_proj.forward(x), v = v_proj.forward(x);
        if (q_conv1d is not null)
        {
            q = q_conv1d.Forward(q, cache, "q_conv");
            k = k_conv1d!.Forward(k, cache, "k_conv");
            v = v_conv1d!.Forward(v, cache, "v_conv");
        }
        (q, k) = Features(q.view(b, t, Heads, KeyDim), k.view(b, t, Heads, KeyDim), position); // [B, T, H, Dk']
        v = Values(v.view(b, t, Heads, ValueDim));                                              // [B, T, H, Dv']
        var o = Remember(q, k, v, x, cache);
        return Output(o, x).MoveToOuterDisposeScope();
    }

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
    protected Tensor Output(Tensor o, Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        var gate = g_proj?.forward(x).view(b, t, Heads, ValueDim);
        var y = o_norm.forward(Read(o), gate).reshape(b, t, Heads * ValueDim);                  // [B, T, H·Dv]
        return o_proj.forward(y);
    }
}
