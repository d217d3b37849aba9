using Mnemo.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Causal multi-head softmax attention through libtorch's scaled_dot_product_attention, with rotary or no
/// positions (learned ones live in the model's embedding), an optional sliding window and optional short
/// convolutions on q, k, v. Parameter names follow fla's Attention: q_proj, k_proj, v_proj, o_proj,
/// q_conv1d, k_conv1d, v_conv1d.
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly Linear q_proj, k_proj, v_proj, o_proj;
    readonly ShortConvolution? q_conv1d, k_conv1d, v_conv1d;
    readonly int _heads, _headDim, _window;
    readonly bool _rotary;

    public Attention(ModelConfig c) : base(nameof(Attention))
    {
        _heads = c.NumHeads;
        _headDim = c.HeadDim;
        _window = c.Window;
        _rotary = c.Positions == PositionKind.Rope;
        q_proj = nn.Linear(c.DModel, c.DModel, hasBias: false);
        k_proj = nn.Linear(c.DModel, c.DModel, hasBias: false);
        v_proj = nn.Linear(c.DModel, c.DModel, hasBias: false);
        o_proj = nn.Linear(c.DModel, c.DModel, hasBias: false);
        if (c.ShortConv)
        {
            q_conv1d = new ShortConvolution(c.DModel, c.ConvSize);
            k_conv1d = new ShortConvolution(c.DModel, c.ConvSize);
            v_conv1d = new ShortConvolution(c.DModel, c.ConvSize);
        }
        RegisterComponents();
    }

    /// <param name="x">[B, T, D]</param>
    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>
    /// With a cache, the new tokens attend to every cached key plus themselves (a KV cache); with a sliding
    /// window only the last window − 1 keys are kept, so memory stays flat.
    /// </summary>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], offset = cache?.Position ?? 0;
        Tensor q = q_proj.forward(x), k = k_proj.forward(x), v = v_proj.forward(x);   // [B, T, D]
        if (q_conv1d is not null)
        {
            q = q_conv1d.Forward(q, cache, "q_conv");
            k = k_conv1d!.Forward(k, cache, "k_conv");
            v = v_conv1d!.Forward(v, cache, "v_conv");
        }
        q = q.view(b, t, _heads, _headDim);                                            // [B, T, H, Dh]
        k = k.view(b, t, _heads, _headDim);
        v = v.view(b, t, _heads, _headDim);
        if (_rotary)
        {
            q = RotaryEmbedding.Apply(q, offset);
            k = RotaryEmbedding.Apply(k, offset);
        }
        // SDPA wants [B, H, T, Dh].
        q = q.transpose(1, 2);
        k = k.transpose(1, 2);
        v = v.transpose(1, 2);
        long past = 0;
        if (cache is not null && _window == 0)
        {
            past = cache.KvLength;
            (k, v) = KvBuffer.Append(cache, k, v);                                       // [B, H, past + T, Dh]
        }
        else if (cache?.Get("k") is { } pastK)
        {
            // Sliding window: the cache holds only the last window − 1 keys, so concatenating is cheap.
            past = pastK.shape[2];
            k = cat([pastK, k], 2);
            v = cat([cache.Get("v")!, v], 2);
        }
        Tensor o;
        if (past == 0 && (_window == 0 || _window >= t))
            o = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        else
            o = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: CausalMask(t, past, _window, x.device));
        if (cache is not null && _window > 0)
        {
            long keep = Math.Min(_window - 1, k.shape[2]);
            cache.Set("k", k.narrow(2, k.shape[2] - keep, keep));
            cache.Set("v", v.narrow(2, v.shape[2] - keep, keep));
        }
        o = o.transpose(1, 2).reshape(b, t, _heads * _headDim);                         // [B, T, D]
        return o_proj.forward(o).MoveToOuterDisposeScope();
    }

    /// <summary>[T, past + T] boolean mask for T new queries after <paramref name="past"/> cached keys: query i
    /// (absolute past + i) sees key j when 0 ≤ past + i − j &lt; window (no upper limit when window is 0).</summary>
    public static Tensor CausalMask(long t, long past, long window, Device device)
    {
        var i = arange(past, past + t, device: device).unsqueeze(1);
        var j = arange(past + t, device: device).unsqueeze(0);
        var diff = i - j;
        var allowed = diff.ge(0);
        return window > 0 ? allowed.logical_and(diff.lt(window)) : allowed;
    }
}
