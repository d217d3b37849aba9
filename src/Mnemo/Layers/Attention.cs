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
public sealed class Attention : nn.Module<Tensor, Tensor>
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
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        Tensor q = q_proj.forward(x), k = k_proj.forward(x), v = v_proj.forward(x);   // [B, T, D]
        if (q_conv1d is not null)
        {
            q = q_conv1d.forward(q);
            k = k_conv1d!.forward(k);
            v = v_conv1d!.forward(v);
        }
        q = q.view(b, t, _heads, _headDim);                                            // [B, T, H, Dh]
        k = k.view(b, t, _heads, _headDim);
        v = v.view(b, t, _heads, _headDim);
        if (_rotary)
        {
            q = RotaryEmbedding.Apply(q);
            k = RotaryEmbedding.Apply(k);
        }
        // SDPA wants [B, H, T, Dh].
        q = q.transpose(1, 2);
        k = k.transpose(1, 2);
        v = v.transpose(1, 2);
        Tensor o = _window > 0 && _window < t
            ? nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: SlidingWindowMask(t, _window, x.device))
            : nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        o = o.transpose(1, 2).reshape(b, t, _heads * _headDim);                         // [B, T, D]
        return o_proj.forward(o).MoveToOuterDisposeScope();
    }

    /// <summary>[T, T] boolean mask, true where query i may attend key j: 0 ≤ i − j &lt; window.</summary>
    public static Tensor SlidingWindowMask(long t, long window, Device device)
    {
        var i = arange(t, device: device).unsqueeze(1);
        var j = arange(t, device: device).unsqueeze(0);
        var diff = i - j;
        return diff.ge(0).logical_and(diff.lt(window));
    }
}
