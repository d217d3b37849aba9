using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>The error signal a recoding step descends (docs/recoding.md#error-signals).</summary>
public enum RecodingSignal
{
    /// <summary>−log p(x_{t+1} | h_t): how surprising the token that arrived next was; needs that token.</summary>
    Surprisal,
    /// <summary>−Σ_v p(v | h_t) log p(v | h_t): the uncertainty of the prediction; needs no token.</summary>
    Entropy,
}

/// <summary>How a <see cref="RecodingLstm"/> corrects its state at inference (docs/recoding.md).</summary>
public sealed record RecodingConfig
{
    public RecodingSignal Signal { get; init; } = RecodingSignal.Surprisal;
    /// <summary>Gradient steps per token; 0 is the plain LSTM.</summary>
    public int Steps { get; init; } = 1;
    /// <summary>α, the step size.</summary>
    public double StepSize { get; init; } = 1;
}

/// <summary>What a recoded pass scored and how much the corrections lowered the signal (mean per token, nats).</summary>
/// <param name="Logits">the predictions scored [B, T, V]: made before the next token is seen (surprisal), or after the
/// correction (entropy, which sees no token)</param>
public sealed record RecodedPass(Tensor Logits, double SignalBefore, double SignalAfter);

/// <summary>
/// An LSTM language model whose hidden states are corrected at inference by gradient descent on a self-supervised error
/// signal (Ulmer 2021, "Recoding latent sentence representations", arXiv 2101.00674; docs/recoding.md). The model is an
/// embedding, L LSTM layers (libtorch's fused LSTM for training) and a linear decoder. At token t the layers step by
/// PyTorch's cell equations (<see cref="LstmEquations"/>) with additive corrections Δc_l on every cell state and Δh_l on
/// every hidden state, the next layer reading the corrected h:
/// <code>
/// c_l = σ(f) ⊙ c_{l,t−1} + σ(i) ⊙ tanh(g) + Δc_l,   h_l = σ(o) ⊙ tanh(c_l) + Δh_l,   p_t = softmax(W h_L + b)
/// Δ ← Δ − α ∇_Δ δ_t   (n steps from Δ = 0)
/// </code>
/// and the corrected (h_l, c_l) are what the next token starts from. With n = 0 it is the plain LSTM.
/// </summary>
public sealed class RecodingLstm : nn.Module<Tensor, Tensor>
{
    readonly Embedding embedding;
    readonly LSTM lstm;
    readonly Linear decoder;
    readonly int _layers, _hidden;

    public RecodingLstm(int vocab, int hidden, int layers) : base(nameof(RecodingLstm))
    {
        (_layers, _hidden) = (layers, hidden);
        embedding = nn.Embedding(vocab, hidden);
        lstm = nn.LSTM(hidden, hidden, layers, batchFirst: true);
        decoder = nn.Linear(hidden, vocab);
        RegisterComponents();
    }

    /// <summary>Logits [B, T, V] of tokens [B, T] by the fused LSTM (training).</summary>
    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var (output, _, _) = lstm.forward(embedding.forward(tokens), null);
        return decoder.forward(output).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Reads <paramref name="inputs"/> [B, T] one token at a time, correcting the state after every token by
    /// <paramref name="c"/>. <paramref name="observed"/> [B, T] is the token that arrives after each input (what
    /// surprisal measures; the last position has none, so it is not corrected). Runs without touching parameter gradients.
    /// </summary>
    public RecodedPass Recode(Tensor inputs, Tensor observed, RecodingConfig c)
    {
        using var scope = NewDisposeScope();
        var p = lstm.named_parameters().ToDictionary(n => n.name, n => n.parameter.detach());
        var weights = Enumerable.Range(0, _layers).Select(l => (Ih: p[$"weight_ih_l{l}"].T, BiasIh: p[$"bias_ih_l{l}"],
            Hh: p[$"weight_hh_l{l}"].T, BiasHh: p[$"bias_hh_l{l}"])).ToArray();
        long b = inputs.shape[0], steps = inputs.shape[1];
        var (w, bias) = (decoder.weight!.detach(), decoder.bias!.detach());
        var h = Enumerable.Range(0, _layers).Select(_ => zeros([b, _hidden], w.dtype)).ToArray();   // the carried state
        var cell = Enumerable.Range(0, _layers).Select(_ => zeros([b, _hidden], w.dtype)).ToArray();
        var scored = new Tensor[steps];
        double before = 0, after = 0;
        int corrected = 0;
        for (long t = 0; t < steps; t++)
        {
            using var step = NewDisposeScope();
            var x = embedding.forward(inputs.select(1, t)).detach();                    // [B, hidden]
            var next = observed.select(1, t);
            // W_ih x + b_ih + W_hh h + b_hh of layer l (its gates in PyTorch's order i, f, g, o)
            Tensor[] Gates(int l, Tensor input) =>
                (input.matmul(weights[l].Ih) + weights[l].BiasIh + h[l].matmul(weights[l].Hh) + weights[l].BiasHh).chunk(4, -1);
            var first = Gates(0, x);                                                    // no Δ reaches layer 0's gates: once per token
            // One pass of every layer from the carried state with corrections Δ (null: none).
            (Tensor Logits, Tensor[] H, Tensor[] C) Pass(Tensor[]? delta)
            {
                var (hs, cs, input) = (new Tensor[_layers], new Tensor[_layers], x);
                for (int l = 0; l < _layers; l++)
                {
                    var gates = l == 0 ? first : Gates(l, input);
                    cs[l] = LstmEquations.Cell(gates, cell[l]);
                    if (delta is not null) cs[l] = cs[l] + delta[2 * l + 1];
                    hs[l] = LstmEquations.Hidden(gates, cs[l]);
                    if (delta is not null) hs[l] = hs[l] + delta[2 * l];
                    input = hs[l];
                }
                return (nn.functional.linear(input, w, bias), hs, cs);
            }
            Tensor Signal(Tensor logits) => c.Signal == RecodingSignal.Surprisal
                ? nn.functional.cross_entropy(logits, next, reduction: nn.Reduction.Sum)
                : -(logits.softmax(-1) * logits.log_softmax(-1)).sum();

            bool recode = c.Steps > 0 && (c.Signal == RecodingSignal.Entropy || t + 1 < steps);
            Tensor plain;
            Tensor[] hNew, cNew;
            using (no_grad()) (plain, hNew, cNew) = Pass(null);
            var final = plain;
            if (recode)
            {
                // Δh_l, Δc_l for every layer l, from zero
                var delta = Enumerable.Range(0, 2 * _layers).Select(_ => zeros([b, _hidden], w.dtype).requires_grad_()).ToArray();
                for (int s = 0; s < c.Steps; s++)
                {
                    var objective = Signal(Pass(delta).Logits);
                    var grads = autograd.grad([objective], delta);
                    delta = [.. delta.Zip(grads, (d, g) => (d.detach() - c.StepSize * g).requires_grad_())];
                }
                using (no_grad()) (final, hNew, cNew) = Pass(delta);
                using (no_grad())
                {
                    before += Signal(plain).ToDouble() / b;
                    after += Signal(final).ToDouble() / b;
                }
                corrected++;
            }
            scored[t] = (c.Signal == RecodingSignal.Surprisal ? plain : final).MoveToOuterDisposeScope();
            for (int l = 0; l < _layers; l++)
            {
                h[l].Dispose();                                                         // the carried state is replaced, not kept
                cell[l].Dispose();
                (h[l], cell[l]) = (hNew[l].MoveToOuterDisposeScope(), cNew[l].MoveToOuterDisposeScope());
            }
        }
        var logits = stack(scored, 1).MoveToOuterDisposeScope();
        return new RecodedPass(logits, corrected == 0 ? 0 : before / corrected, corrected == 0 ? 0 : after / corrected);
    }
}
