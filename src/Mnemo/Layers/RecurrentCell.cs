using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// The classic recurrent cells as mixers (docs/mechanisms.md#lstm-and-gru): one LSTM (Hochreiter &amp; Schmidhuber 1997)
/// or GRU (Cho et al. 2014) layer of hidden size d_model over the sequence, run by libtorch's fused CPU
/// implementation (nn.LSTM / nn.GRU, PyTorch's equations and parameter names under <c>rnn</c>). The state a stream
/// carries is h (GRU) or (h, c) (LSTM), d_model floats each. With model.rnn.bidirectional a second cell reads the
/// sequence backwards and <c>o_proj</c> maps both directions' outputs (2·d) back to d; such a layer cannot stream.
/// </summary>
public sealed class RecurrentCell : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly nn.Module rnn;                           // LSTM or GRU: one field, so either's parameters are rnn.*
    readonly Projection? o_proj;
    readonly bool _bidirectional;

    public RecurrentCell(ModelConfig c, MixerKind kind) : base(nameof(RecurrentCell))
    {
        _bidirectional = c.Rnn.Bidirectional;
        rnn = kind switch
        {
            MixerKind.Lstm => nn.LSTM(c.DModel, c.DModel, batchFirst: true, bidirectional: _bidirectional),
            MixerKind.Gru => nn.GRU(c.DModel, c.DModel, batchFirst: true, bidirectional: _bidirectional),
            _ => throw new ArgumentException($"{kind} is not a recurrent cell", nameof(kind)),
        };
        if (_bidirectional) o_proj = new Projection(2L * c.DModel, c.DModel, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <param name="x">[B, T, D]</param>
    /// <param name="cache">carries h (and c) [1, B, D] between calls</param>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        if (_bidirectional && cache is not null)
            throw new InvalidOperationException("a bidirectional cell reads the whole sequence backwards too; it cannot stream");
        using var scope = NewDisposeScope();
        Tensor output;
        if (rnn is LSTM lstm)
        {
            var carried = cache?.Get("h") is { } h ? (h, cache.Get("c")!) : ((Tensor, Tensor)?)null;
            (output, var hn, var cn) = lstm.forward(x, carried);
            cache?.Set("h", hn);
            cache?.Set("c", cn);
        }
        else
        {
            (output, var hn) = ((GRU)rnn).forward(x, cache?.Get("h"));
            cache?.Set("h", hn);
        }
        return (o_proj is null ? output : o_proj.forward(output)).MoveToOuterDisposeScope();   // [B, T, D]
    }
}
