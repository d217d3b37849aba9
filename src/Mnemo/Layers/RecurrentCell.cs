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
/// With model.rnn.adc_bits the same parameters run PyTorch's cell equations step by step, every gate and candidate
/// activation read through a <see cref="RampAdc"/> (docs/mechanisms.md#analog-adc-activations).
/// </summary>
public sealed class RecurrentCell : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly nn.Module rnn;                           // LSTM or GRU: one field, so either's parameters are rnn.*
    readonly Projection? o_proj;
    readonly bool _bidirectional;
    readonly int _adcBits;
    readonly double _adcNoise;

    public RecurrentCell(ModelConfig c, MixerKind kind) : base(nameof(RecurrentCell))
    {
        _bidirectional = c.Rnn.Bidirectional;
        (_adcBits, _adcNoise) = (c.Rnn.AdcBits, c.Rnn.AdcNoise);
        if (_bidirectional && _adcBits > 0) throw new ArgumentException("model.rnn.adc_bits: the ADC cells run one direction", nameof(c));
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

    /// <summary>Run the cell equations step by step even without an ADC (tests compare them with the fused cell).</summary>
    internal bool StepByStep { get; set; }

    /// <param name="x">[B, T, D]</param>
    /// <param name="cache">carries h (and c) [1, B, D] between calls</param>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        if (_bidirectional && cache is not null)
            throw new InvalidOperationException("a bidirectional cell reads the whole sequence backwards too; it cannot stream");
        using var scope = NewDisposeScope();
        if (_adcBits > 0 || StepByStep) return Steps(x, cache).MoveToOuterDisposeScope();
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

    /// <summary>
    /// PyTorch's LSTM and GRU equations one step at a time on the fused cell's own parameters (gate order i, f, g, o and
    /// r, z, n), each σ and tanh read by the ADC: LSTM c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'); GRU
    /// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h. x [B, T, D] → [B, T, D].
    /// </summary>
    Tensor Steps(Tensor x, LayerCache? cache)
    {
        var p = rnn.named_parameters().ToDictionary(n => n.name, n => (Tensor)n.parameter);
        Tensor Sigmoid(Tensor v) => RampAdc.Sigmoid(v, _adcBits, _adcNoise);
        Tensor Tanh(Tensor v) => RampAdc.Tanh(v, _adcBits, _adcNoise);
        long b = x.shape[0], hidden = p["weight_hh_l0"].shape[1];
        bool lstm = rnn is LSTM;
        var fromInput = x.matmul(p["weight_ih_l0"].T) + p["bias_ih_l0"];              // W_i· x + b_i· for every t [B, T, G·H]
        var h = cache?.Get("h")?.squeeze(0) ?? zeros([b, hidden], x.dtype, x.device);
        var c = lstm ? cache?.Get("c")?.squeeze(0) ?? zeros([b, hidden], x.dtype, x.device) : null;
        var outputs = new Tensor[x.shape[1]];
        for (long t = 0; t < x.shape[1]; t++)
        {
            var gi = fromInput.select(1, t);
            var gh = h.matmul(p["weight_hh_l0"].T) + p["bias_hh_l0"];                   // [B, G·H]
            if (lstm)
            {
                var gates = (gi + gh).chunk(4, -1);
                c = LstmEquations.Cell(gates, c!, Sigmoid, Tanh);
                h = LstmEquations.Hidden(gates, c, Sigmoid, Tanh);
            }
            else
            {
                var (xi, hh) = (gi.chunk(3, -1), gh.chunk(3, -1));
                var r = Sigmoid(xi[0] + hh[0]);
                var z = Sigmoid(xi[1] + hh[1]);
                h = (1 - z) * Tanh(xi[2] + r * hh[2]) + z * h;
            }
            outputs[t] = h;
        }
        cache?.Set("h", h.unsqueeze(0));
        if (c is not null) cache?.Set("c", c.unsqueeze(0));
        return stack(outputs, 1);
    }
}
