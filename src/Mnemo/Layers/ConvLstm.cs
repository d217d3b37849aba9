using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// One ConvLSTM layer (Shi et al. 2015, arXiv 1506.04214, eq. 3; docs/grid-forecast.md#the-convlstm-cell): an LSTM whose
/// input, state and gates are 2-D grids of channels and whose input-to-state and state-to-state maps are convolutions,
/// with peephole weights on the cell state:
/// <code>
/// i_t = σ(W_xi ∗ X_t + W_hi ∗ H_{t−1} + W_ci ⊙ C_{t−1} + b_i)
/// f_t = σ(W_xf ∗ X_t + W_hf ∗ H_{t−1} + W_cf ⊙ C_{t−1} + b_f)
/// C_t = f_t ⊙ C_{t−1} + i_t ⊙ tanh(W_xc ∗ X_t + W_hc ∗ H_{t−1} + b_c)
/// o_t = σ(W_xo ∗ X_t + W_ho ∗ H_{t−1} + W_co ⊙ C_t + b_o)
/// H_t = o_t ⊙ tanh(C_t)
/// </code>
/// ∗ is a k×k convolution with zero "same" padding (one convolution of [X ‖ H] makes all four pre-activations, in the
/// order i, f, c, o), ⊙ the element-wise product; the peepholes W_c· are one weight per channel and grid cell, as in
/// the paper. The state (H, C) is [B, hidden, height, width] each; a missing state is zeros.
/// </summary>
public sealed class ConvLstmCell : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv;
    readonly Parameter w_ci, w_cf, w_co;
    readonly int _hidden;
    readonly (long H, long W) _padding;

    /// <param name="inputs">channels of X</param>
    /// <param name="hidden">channels of H and C</param>
    /// <param name="kernel">odd side of the square convolution kernels; on a grid of one row the kernels are one row high</param>
    /// <param name="height">grid rows (the peepholes' shape)</param>
    /// <param name="width">grid columns</param>
    public ConvLstmCell(int inputs, int hidden, int kernel, int height, int width) : base(nameof(ConvLstmCell))
    {
        if (kernel < 1 || kernel % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernel), $"the kernel side must be odd, got {kernel}");
        _hidden = hidden;
        long rows = height == 1 ? 1 : kernel;                                          // a series' 1 × s grid: a 1 × k kernel
        _padding = (rows / 2, kernel / 2);
        conv = nn.Conv2d(inputs + hidden, 4L * hidden, (rows, kernel), padding: _padding);
        w_ci = nn.Parameter(zeros(hidden, height, width));
        w_cf = nn.Parameter(zeros(hidden, height, width));
        w_co = nn.Parameter(zeros(hidden, height, width));
        RegisterComponents();
    }

    public int Hidden => _hidden;

    /// <summary>Use <see cref="Step"/>: a cell needs its state.</summary>
    public override Tensor forward(Tensor x) => Step(x, null).H;

    /// <summary>One step. x [B, inputs, height, width]; state (H, C) [B, hidden, height, width] each, or null for zeros.</summary>
    public (Tensor H, Tensor C) Step(Tensor x, (Tensor H, Tensor C)? state)
    {
        using var scope = NewDisposeScope();
        var (h, c) = state ?? (zeros([x.shape[0], _hidden, x.shape[2], x.shape[3]], x.dtype, x.device),
            zeros([x.shape[0], _hidden, x.shape[2], x.shape[3]], x.dtype, x.device));
        // libtorch's conv2d is not used: it can read memory it did not write (Im2Col).
        var gates = Im2Col.Conv2d(cat([x, h], 1), conv.weight!, conv.bias, _padding).chunk(4, 1); // 4 × [B, hidden, height, width]
        var i = sigmoid(gates[0] + w_ci * c);
        var f = sigmoid(gates[1] + w_cf * c);
        var cNext = f * c + i * tanh(gates[2]);
        var o = sigmoid(gates[3] + w_co * cNext);
        var hNext = o * tanh(cNext);
        return (hNext.MoveToOuterDisposeScope(), cNext.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// Stacked ConvLSTM layers run over a sequence of grids (docs/grid-forecast.md#the-models): layer ℓ reads layer ℓ − 1's H
/// at the same step. The state is every layer's (H, C); passing the state a call returned continues the sequence, so two
/// calls over a split sequence equal one call over the whole.
/// </summary>
public sealed class ConvLstm : nn.Module<Tensor, Tensor>
{
    readonly ModuleList<ConvLstmCell> layers;
    readonly int _inputs;

    /// <param name="inputs">channels of the input grids; 0 for a network that only unrolls its state (the forecaster)</param>
    public ConvLstm(int inputs, int hidden, int kernel, int numLayers, int height, int width) : base(nameof(ConvLstm))
    {
        if (numLayers < 1) throw new ArgumentOutOfRangeException(nameof(numLayers), $"at least one layer, got {numLayers}");
        _inputs = inputs;
        layers = nn.ModuleList([.. Enumerable.Range(0, numLayers)
            .Select(l => new ConvLstmCell(l == 0 ? inputs : hidden, hidden, kernel, height, width))]);
        RegisterComponents();
    }

    public int NumLayers => layers.Count;

    /// <summary>The last layer's H at every step: x [B, T, inputs, height, width] → [B, T, hidden, height, width].</summary>
    public override Tensor forward(Tensor x) => Forward(x, null).Outputs;

    /// <param name="x">[B, T, inputs, height, width]</param>
    /// <param name="state">every layer's (H, C), or null for zeros</param>
    /// <returns>the last layer's H at every step [B, T, hidden, height, width] and every layer's final state</returns>
    public (Tensor Outputs, (Tensor H, Tensor C)[] State) Forward(Tensor x, (Tensor H, Tensor C)[]? state)
    {
        using var scope = NewDisposeScope();
        var current = Start(state);
        var outputs = new Tensor[x.shape[1]];
        for (long t = 0; t < x.shape[1]; t++) outputs[t] = StepLayers(x.select(1, t), current)[^1];
        return (stack(outputs, 1).MoveToOuterDisposeScope(), Keep(current));
    }

    /// <summary>
    /// Runs <paramref name="steps"/> steps with no input (X = 0, or no channels at all), as the paper's forecasting network
    /// does from the encoder's state; returns every layer's H at every step [B, steps, layers · hidden, height, width].
    /// </summary>
    public (Tensor Hidden, (Tensor H, Tensor C)[] State) Unroll(int steps, (Tensor H, Tensor C)[] state)
    {
        using var scope = NewDisposeScope();
        var current = Start(state);
        var first = state[0].H;
        var none = zeros([first.shape[0], _inputs, first.shape[2], first.shape[3]], first.dtype, first.device);
        var hidden = new Tensor[steps];
        for (int t = 0; t < steps; t++) hidden[t] = cat(StepLayers(none, current), 1);   // [B, layers · hidden, height, width]
        return (stack(hidden, 1).MoveToOuterDisposeScope(), Keep(current));
    }

    (Tensor H, Tensor C)?[] Start((Tensor H, Tensor C)[]? state)
    {
        if (state is not null && state.Length != layers.Count)
            throw new ArgumentException($"the state has {state.Length} layers, the ConvLSTM {layers.Count}", nameof(state));
        return state is null ? new (Tensor H, Tensor C)?[layers.Count] : [.. state.Select(s => ((Tensor H, Tensor C)?)s)];
    }

    /// <summary>One step of every layer, bottom up; updates <paramref name="current"/> and returns each layer's H.</summary>
    Tensor[] StepLayers(Tensor input, (Tensor H, Tensor C)?[] current)
    {
        var h = new Tensor[layers.Count];
        for (int l = 0; l < layers.Count; l++)
        {
            current[l] = layers[l].Step(input, current[l]);
            input = h[l] = current[l]!.Value.H;
        }
        return h;
    }

    static (Tensor H, Tensor C)[] Keep((Tensor H, Tensor C)?[] current) =>
        [.. current.Select(s => (s!.Value.H.MoveToOuterDisposeScope(), s.Value.C.MoveToOuterDisposeScope()))];
}
