using Mnemo.Forecasting;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// The LSTM and GRU mixers against their cell equations computed by hand, the bidirectional wrapper, and where it is
/// refused. (Streaming ≡ the full forward and every parameter's gradient: MixerTests, which covers every mixer.)
/// </summary>
[Collection(TorchCollection.Name)]
public class RecurrentCellTests
{
    const int D = 3;

    static (RecurrentCell Cell, Func<string, Tensor> P) Cell(MixerKind kind, bool bidirectional = false)
    {
        TorchRuntime.Seed(31);
        var cell = new RecurrentCell(new ModelConfig { DModel = D, NumHeads = 1, Rnn = new() { Bidirectional = bidirectional } }, kind);
        cell.to(float64);
        var parameters = cell.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        return (cell, name => parameters["rnn." + name].detach());
    }

    static Tensor Affine(Func<string, Tensor> p, Tensor x, Tensor h) =>
        x.matmul(p("weight_ih_l0").T) + p("bias_ih_l0") + h.matmul(p("weight_hh_l0").T) + p("bias_hh_l0");

    [Fact]
    public void Lstm_step_is_the_cell_equations()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (cell, p) = Cell(MixerKind.Lstm);
        var gen = new Generator(4);
        var x = randn(2, 1, D, float64, generator: gen);
        var (h, c) = (randn(1, 2, D, float64, generator: gen), randn(1, 2, D, float64, generator: gen));
        using var cache = new LayerCache();
        cache.Set("h", h.clone());
        cache.Set("c", c.clone());
        var y = cell.Forward(x, cache);
        // gates = W_ih x + b_ih + W_hh h + b_hh in PyTorch's order i, f, g, o
        var gates = Affine(p, x.squeeze(1), h.squeeze(0)).chunk(4, -1);
        var (i, f, g, o) = (gates[0].sigmoid(), gates[1].sigmoid(), gates[2].tanh(), gates[3].sigmoid());
        var cNext = f * c.squeeze(0) + i * g;
        var hNext = o * cNext.tanh();
        Assert.True(Equivalence.RelativeRms(y.squeeze(1), hNext) <= 1e-12, "output h'");
        Assert.True(Equivalence.RelativeRms(cache.Get("c")!.squeeze(0), cNext) <= 1e-12, "carried c'");
        Assert.True(Equivalence.RelativeRms(cache.Get("h")!.squeeze(0), hNext) <= 1e-12, "carried h'");
    }

    [Fact]
    public void Gru_step_is_the_cell_equations()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (cell, p) = Cell(MixerKind.Gru);
        var gen = new Generator(5);
        var (x, h) = (randn(2, 1, D, float64, generator: gen), randn(1, 2, D, float64, generator: gen));
        using var cache = new LayerCache();
        cache.Set("h", h.clone());
        var y = cell.Forward(x, cache);
        // r, z, n in PyTorch's order; n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h
        var (xs, hs) = (x.squeeze(1), h.squeeze(0));
        var input = (xs.matmul(p("weight_ih_l0").T) + p("bias_ih_l0")).chunk(3, -1);
        var hidden = (hs.matmul(p("weight_hh_l0").T) + p("bias_hh_l0")).chunk(3, -1);
        var (r, z) = ((input[0] + hidden[0]).sigmoid(), (input[1] + hidden[1]).sigmoid());
        var n = (input[2] + r * hidden[2]).tanh();
        var hNext = (1 - z) * n + z * hs;
        Assert.True(Equivalence.RelativeRms(y.squeeze(1), hNext) <= 1e-12, "output h'");
        Assert.True(Equivalence.RelativeRms(cache.Get("h")!.squeeze(0), hNext) <= 1e-12, "carried h'");
    }

    [Theory]
    [InlineData(MixerKind.Lstm)]
    [InlineData(MixerKind.Gru)]
    public void Only_the_bidirectional_cell_sees_the_last_token_from_the_first_position(MixerKind kind)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(1, 6, D, float64, generator: new Generator(6));
        var changed = x.clone();
        changed[0, 5].add_(1.0);
        foreach (bool bidirectional in new[] { false, true })
        {
            var (cell, _) = Cell(kind, bidirectional);
            double moved = (cell.forward(x).select(1, 0) - cell.forward(changed).select(1, 0)).abs().max().item<double>();
            if (bidirectional) Assert.True(moved > 1e-6, $"{kind} bidirectional: the first output ignores the last token");
            else Assert.Equal(0.0, moved);
            if (bidirectional)
                Assert.Throws<InvalidOperationException>(() => cell.Forward(x, new LayerCache()));   // cannot stream
        }
    }

    [Fact]
    public void A_language_model_refuses_a_bidirectional_cell_and_a_forecaster_takes_it()
    {
        var c = TinyModels.Config(MixerKind.Lstm, m => m with { Rnn = new() { Bidirectional = true } });
        Assert.Contains("model.rnn.bidirectional", Assert.Throws<ArgumentException>(() => new LanguageModel(c)).Message);
        var problems = new RunConfig { Model = c }.Validate().ToList();
        Assert.Contains(problems, p => p.Item1 == "model.rnn.bidirectional");
        using var scope = NewDisposeScope();
        var reader = new WindowModel(c, inputs: 2, outputs: 3);
        Assert.Equal(new long[] { 4, 3 }, reader.forward(randn(4, 10, 2)).shape);
    }

    [Fact]
    public void The_cells_keep_pytorchs_uniform_initialisation()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Build(TinyModels.Config(MixerKind.Lstm), fp64: false);
        var w = model.named_parameters().Single(p => p.name == "model.layers.0.attn.rnn.weight_hh_l0").parameter;
        double bound = 1 / Math.Sqrt(16);                                     // U(±1/√hidden), hidden = d_model 16
        Assert.True(w.abs().max().item<float>() <= bound + 1e-6);
        Assert.True(w.std().item<float>() > 0.5 * bound / Math.Sqrt(3), "not the N(0, 0.02²) of the other matrices");
    }
}
