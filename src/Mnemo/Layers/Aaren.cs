using Mnemo.Memory.Aaren;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Aaren (Feng et al. 2024, "Attention as an RNN"; docs/mechanisms.md#aaren): attention whose query is a learned
/// parameter, not a projection of the token, read at every prefix as a many-to-many RNN. Per head h, with
/// k_t = k_proj x_t and v_t = v_proj x_t split into heads,
/// <code>
/// s_t = q_h · k_t / √Dh,   o_t = Σ_{i≤t} softmax_{i≤t}(s) v_i,   y = o_proj(o)
/// </code>
/// trained through the parallel prefix scan and streamed with the O(1) state (m, u, w) of <see cref="AarenScan"/>.
/// Parameters: <c>query</c> [H, Dh], k_proj, v_proj, o_proj. The weights never depend on the current token, only on
/// each past token's own score, so a layer cannot look up a key by the token it reads at; stacking layers and the
/// MLP between them is what makes later queries data-dependent in effect.
/// </summary>
public sealed class Aaren : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly Parameter query;
    readonly Projection k_proj, v_proj, o_proj;
    readonly int _heads, _headDim;

    public Aaren(ModelConfig c) : base(nameof(Aaren))
    {
        _heads = c.NumHeads;
        _headDim = c.HeadDim;
        query = nn.Parameter(randn(_heads, _headDim) * Math.Pow(_headDim, -0.5));   // the model's init redraws it
        k_proj = new Projection(c.DModel, c.DModel, hasBias: false);
        v_proj = new Projection(c.DModel, c.DModel, hasBias: false);
        o_proj = new Projection(c.DModel, c.DModel, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var k = k_proj.forward(x).view(b, t, _heads, _headDim);                // [B, T, H, Dh]
        var v = v_proj.forward(x).view(b, t, _heads, _headDim);
        var s = (k * query).sum(-1) * Math.Pow(_headDim, -0.5);                  // [B, T, H]
        var carried = cache?.Get("m") is { } m ? new AarenState(m, cache.Get("u")!, cache.Get("w")!) : null;
        var (o, state) = AarenScan.Scan(s, v, carried);                        // [B, T, H, Dh]
        if (cache is not null)
        {
            cache.Set("m", state.M);
            cache.Set("u", state.U);
            cache.Set("w", state.W);
        }
        return o_proj.forward(o.reshape(b, t, _heads * _headDim)).MoveToOuterDisposeScope();
    }
}
