using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>The ramp ADC's levels, its straight-through gradient and noise, and the LSTM / GRU cells that read their
/// activations through it: step by step they equal libtorch's fused cells, stream, and refuse what they cannot do.</summary>
[Collection(TorchCollection.Name)]
public class RampAdcTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void A_b_bit_adc_reads_the_middle_of_one_of_2_to_the_b_levels(int bits)
    {
        using var scope = NewDisposeScope();
        var x = linspace(-12, 12, 20001, float64);
        var sigmoid = RampAdc.Sigmoid(x, bits);
        var tanh = RampAdc.Tanh(x, bits);
        double levels = Math.Pow(2, bits);
        Assert.Equal((long)levels, sigmoid.unique().Item1.shape[0]);
        Assert.Equal((long)levels, tanh.unique().Item1.shape[0]);
        // the level of σ(x) is the one it falls in: |y − σ(x)| ≤ half a level
        Assert.True((sigmoid - x.sigmoid()).abs().max().item<double>() <= 0.5 / levels + 1e-12);
        Assert.True((tanh - x.tanh()).abs().max().item<double>() <= 1.0 / levels + 1e-12);
        Assert.Equal(0.5 / levels, sigmoid.min().item<double>(), 12);                    // the middle of the lowest level
        Assert.Equal(0, Equivalence.RelativeRms(RampAdc.Sigmoid(x, 0), x.sigmoid()));   // 0 bits: exact
    }

    [Fact]
    public void The_gradient_is_the_activations_own_and_noise_is_seeded()
    {
        using var scope = NewDisposeScope();
        var x = randn([50], float64, generator: new Generator(2)).requires_grad_(true);
        RampAdc.Tanh(x, 3).sum().backward();
        Assert.True(Equivalence.RelativeRms(x.grad!, 1 - x.detach().tanh().square()) <= 1e-12);
        var a = RampAdc.Sigmoid(x.detach(), 4, noise: 2, generator: new Generator(7));
        var b = RampAdc.Sigmoid(x.detach(), 4, noise: 2, generator: new Generator(7));
        Assert.Equal(0, Equivalence.RelativeRms(a, b));
        Assert.True(Equivalence.RelativeRms(a, RampAdc.Sigmoid(x.detach(), 4)) > 0);    // noise moves some codes
    }

    static RecurrentCell Cell(MixerKind kind, int bits)
    {
        TorchRuntime.Seed(31);
        var cell = new RecurrentCell(new ModelConfig { DModel = 5, NumHeads = 1, Rnn = new() { AdcBits = bits } }, kind);
        cell.to(float64);
        return cell;
    }

    [Theory]
    [InlineData(MixerKind.Lstm)]
    [InlineData(MixerKind.Gru)]
    public void Step_by_step_the_cells_equal_libtorchs_fused_cells_and_every_gradient(MixerKind kind)
    {
        using var scope = NewDisposeScope();
        var x = randn([3, 9, 5], float64, generator: new Generator(3));
        var fused = Cell(kind, 0);
        var steps = Cell(kind, 0);
        steps.StepByStep = true;
        var dy = randn([3, 9, 5], float64, generator: new Generator(4));
        (fused.forward(x) * dy).sum().backward();
        (steps.forward(x) * dy).sum().backward();
        Assert.True(Equivalence.RelativeRms(steps.forward(x), fused.forward(x)) <= 1e-12, $"{kind} output");
        var g = fused.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, p) in steps.named_parameters())
            Assert.True(Equivalence.RelativeRms(p.grad!, g[name]) <= 1e-10, $"{kind} d{name}");
    }

    [Theory]
    [InlineData(MixerKind.Lstm)]
    [InlineData(MixerKind.Gru)]
    public void An_adc_cell_streamed_in_pieces_equals_its_whole_pass(MixerKind kind)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var cell = Cell(kind, 3);
        var x = randn([2, 11, 5], float64, generator: new Generator(5));
        var whole = cell.forward(x);
        using var cache = new LayerCache();
        var pieces = new[] { (0, 4), (4, 1), (5, 6) }.Select(r => cell.Forward(x.narrow(1, r.Item1, r.Item2), cache)).ToArray();
        Assert.True(Equivalence.RelativeRms(cat(pieces, 1), whole) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(whole, Cell(kind, 0).forward(x)) > 1e-3);    // 3 bits change the result
    }

    [Theory]
    [InlineData("""{"rnn": {"adc_bits": 4, "bidirectional": true}}""", "rnn.adc_bits")]
    [InlineData("""{"rnn": {"adc_noise": 0.5}}""", "rnn.adc_noise")]
    [InlineData("""{"rnn": {"adc_bits": 30}}""", "rnn.adc_bits")]
    public void Bad_configs_name_the_field(string json, string field)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigBinder.Bind<ModelConfig>(JsonNode.Parse(json)!, "test"));
        Assert.Contains($"\"{field}\"", error.Message);
    }
}
