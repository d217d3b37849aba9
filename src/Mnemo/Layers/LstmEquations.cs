using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// PyTorch's LSTM cell equations on pre-activations already computed (W_ih x + b_ih + W_hh h + b_hh, chunked in PyTorch's
/// gate order i, f, g, o), with σ and tanh replaceable (an ADC reads them in <see cref="RecurrentCell"/>):
/// <code>c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g),   h' = σ(o) ⊙ tanh(c')</code>
/// Split in two so a caller can move c' before h' reads it (the recoding LSTM's corrections).
/// </summary>
public static class LstmEquations
{
    /// <summary>c' from the gates [i, f, g, o] and c.</summary>
    public static Tensor Cell(Tensor[] gates, Tensor c, Func<Tensor, Tensor>? sigmoid = null, Func<Tensor, Tensor>? tanh = null)
    {
        Func<Tensor, Tensor> s = sigmoid ?? torch.sigmoid, t = tanh ?? torch.tanh;
        return s(gates[1]) * c + s(gates[0]) * t(gates[2]);
    }

    /// <summary>h' from the output gate and c'.</summary>
    public static Tensor Hidden(Tensor[] gates, Tensor cNext, Func<Tensor, Tensor>? sigmoid = null, Func<Tensor, Tensor>? tanh = null)
    {
        Func<Tensor, Tensor> s = sigmoid ?? torch.sigmoid, t = tanh ?? torch.tanh;
        return s(gates[3]) * t(cNext);
    }
}
