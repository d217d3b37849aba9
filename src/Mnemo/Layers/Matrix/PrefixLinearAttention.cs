using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// JRT-RNN's prefix linear attention (Arora et al. 2024; docs/mechanisms.md#prefix-linear-attention): linear attention
/// whose state starts from an encoder's S^e = Σ_{j&lt;P} φ(k^e_j)ᵀ v^e_j over the prefix, with its own key and value
/// projections (k_enc_proj, v_enc_proj, and with model.short_conv their own short convolutions k_enc_conv1d,
/// v_enc_conv1d; the query, φ and the normaliser are shared with the decoder). Prefix positions
/// thus see the whole prefix, later ones the prefix and their causal past; the state after the prefix is one matrix,
/// as large as linear attention's. Without a prefix it is linear attention.
/// </summary>
public sealed class PrefixLinearAttention : LinearAttention, IPrefixMixer
{
    readonly Projection k_enc_proj, v_enc_proj;
    readonly ShortConvolution? k_enc_conv1d, v_enc_conv1d;
    Tensor? _prefix;   // the prefix lengths [B] of the forward in progress (set by the IPrefixMixer call only)

    public PrefixLinearAttention(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(PrefixLinearAttention), c, matrix)
    {
        k_enc_proj = new Projection(c.DModel, Heads * KeyDim, hasBias: false);
        v_enc_proj = new Projection(c.DModel, Heads * ValueDim, hasBias: false);
        if (c.ShortConv)
        {
            k_enc_conv1d = new ShortConvolution(Heads * KeyDim, c.ConvSize);
            v_enc_conv1d = new ShortConvolution(Heads * ValueDim, c.ConvSize);
        }
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, LayerCache? cache, Tensor prefix)
    {
        long b = x.shape[0], t = x.shape[1];
        if (!prefix.shape.SequenceEqual(new[] { b }))
            throw new ArgumentException($"prefix must be [{b}] (one length per row), got [{string.Join(", ", prefix.shape)}]",
                nameof(prefix));
        if (prefix.min().item<long>() < 0 || prefix.max().item<long>() > t)
            throw new ArgumentException($"prefix lengths must lie in [0, {t}] (the piece's length)", nameof(prefix));
        if (cache is not null && cache.Position != 0)
            throw new ArgumentException(
                $"a prefix must be the stream's first piece; this one starts at position {cache.Position}", nameof(prefix));
        _prefix = prefix;
        try { return Forward(x, cache); }
        finally { _prefix = null; }
    }

    /// <summary>S^e of the prefix, added to what the cache holds (nothing: the prefix comes first).</summary>
    protected override Tensor? InitialState(Tensor x, LayerCache? cache)
    {
        var carried = base.InitialState(x, cache);
        if (_prefix is null) return carried;
        long b = x.shape[0], t = x.shape[1];
        Tensor ke = k_enc_proj.forward(x), ve = v_enc_proj.forward(x);
        // The prefix is a stream's first piece, so the encoder's convolutions start from zeros and keep no tail.
        if (k_enc_conv1d is not null) (ke, ve) = (k_enc_conv1d.forward(ke), v_enc_conv1d!.forward(ve));
        ke = Feature(ke.view(b, t, Heads, KeyDim));                                         // [B, T, H, Dk']
        ve = Values(ve.view(b, t, Heads, ValueDim));                                        // [B, T, H, Dv']
        var encoded = PrefixMemory.EncoderState(ke, ve, _prefix.to(x.device));
        return carried is null ? encoded : carried + encoded;
    }
}
