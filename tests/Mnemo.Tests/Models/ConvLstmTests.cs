using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// The ConvLSTM cell against its equations computed by hand (the convolution written out as sums, so padding and the
/// channel order of [X ‖ H] are checked too), its receptive field, and the stacked layers' state carry-over.
/// </summary>
[Collection(TorchCollection.Name)]
public class ConvLstmTests
{
    const int Inputs = 2, Hidden = 3, Kernel = 3, Side = 4;

    static ConvLstmCell RandomCell()
    {
        TorchRuntime.Seed(5);
        var cell = new ConvLstmCell(Inputs, Hidden, Kernel, Side, Side);
        cell.to(float64);
        using (no_grad())
            foreach (var (name, p) in cell.named_parameters())
                if (name.StartsWith("w_c", StringComparison.Ordinal)) p.copy_(randn_like(p) * 0.5);   // peepholes start at 0
        return cell;
    }

    [Fact]
    public void Cell_step_is_the_paper_equations()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var cell = RandomCell();
        var p = cell.named_parameters().ToDictionary(n => n.name, n => n.parameter.detach().clone());
        var gen = new Generator(8);
        var x = randn([2, Inputs, Side, Side], float64, generator: gen);
        var (h, c) = (randn([2, Hidden, Side, Side], float64, generator: gen), randn([2, Hidden, Side, Side], float64, generator: gen));
        var (hNext, cNext) = cell.Step(x, (h, c));

        var w = p["conv.weight"].data<double>().ToArray();                             // [4·Hidden, Inputs + Hidden, k, k]
        var bias = p["conv.bias"].data<double>().ToArray();
        var (xs, hs, cs) = (x.data<double>().ToArray(), h.data<double>().ToArray(), c.data<double>().ToArray());
        var (ci, cf, co) = (p["w_ci"].data<double>().ToArray(), p["w_cf"].data<double>().ToArray(), p["w_co"].data<double>().ToArray());
        int channels = Inputs + Hidden, pad = Kernel / 2;
        double In(int b, int ch, int y, int xx)                                       // [X ‖ H] with zero padding
        {
            if (y < 0 || y >= Side || xx < 0 || xx >= Side) return 0;
            return ch < Inputs ? xs[((b * Inputs + ch) * Side + y) * Side + xx] : hs[((b * Hidden + ch - Inputs) * Side + y) * Side + xx];
        }
        double Conv(int b, int gate, int y, int xx)
        {
            double sum = bias[gate];
            for (int ch = 0; ch < channels; ch++)
                for (int dy = 0; dy < Kernel; dy++)
                    for (int dx = 0; dx < Kernel; dx++)
                        sum += w[((gate * channels + ch) * Kernel + dy) * Kernel + dx] * In(b, ch, y + dy - pad, xx + dx - pad);
            return sum;
        }
        static double S(double v) => 1 / (1 + Math.Exp(-v));
        var (hGot, cGot) = (hNext.data<double>().ToArray(), cNext.data<double>().ToArray());
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < Hidden; j++)
                for (int y = 0; y < Side; y++)
                    for (int xx = 0; xx < Side; xx++)
                    {
                        int cell1 = (j * Side + y) * Side + xx, at = b * Hidden * Side * Side + cell1;
                        double i = S(Conv(b, j, y, xx) + ci[cell1] * cs[at]);
                        double f = S(Conv(b, Hidden + j, y, xx) + cf[cell1] * cs[at]);
                        double cNew = f * cs[at] + i * Math.Tanh(Conv(b, 2 * Hidden + j, y, xx));
                        double o = S(Conv(b, 3 * Hidden + j, y, xx) + co[cell1] * cNew);
                        Assert.Equal(cNew, cGot[at], 1e-12);
                        Assert.Equal(o * Math.Tanh(cNew), hGot[at], 1e-12);
                    }
    }

    [Fact]
    public void One_step_sees_only_the_kernel_neighbourhood()
    {
        using var scope = NewDisposeScope();
        var cell = RandomCell();
        var x = randn([1, Inputs, Side, Side], float64, generator: new Generator(3)).requires_grad_();
        var (h, _) = cell.Step(x, null);
        h[0, 0, 0, 0].backward();                                                       // the corner cell's first channel
        var reached = x.grad!.abs().sum([0, 1]).gt(0);                                  // [Side, Side]
        for (int y = 0; y < Side; y++)
            for (int xx = 0; xx < Side; xx++)
                Assert.Equal(y <= Kernel / 2 && xx <= Kernel / 2, reached[y, xx].item<bool>());
    }

    [Fact]
    public void Two_calls_with_the_carried_state_equal_one_call()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        TorchRuntime.Seed(6);
        var net = new ConvLstm(Inputs, Hidden, Kernel, 2, Side, Side);
        net.to(float64);
        var x = randn([2, 7, Inputs, Side, Side], float64, generator: new Generator(9));
        var (whole, wholeState) = net.Forward(x, null);
        var (first, state) = net.Forward(x.narrow(1, 0, 3), null);
        var (second, secondState) = net.Forward(x.narrow(1, 3, 4), state);
        Assert.True(Equivalence.RelativeRms(cat([first, second], 1), whole) <= 1e-12);
        for (int l = 0; l < 2; l++)
        {
            Assert.True(Equivalence.RelativeRms(secondState[l].H, wholeState[l].H) <= 1e-12, $"layer {l} H");
            Assert.True(Equivalence.RelativeRms(secondState[l].C, wholeState[l].C) <= 1e-12, $"layer {l} C");
        }
    }

    [Fact]
    public void Unrolling_without_input_is_stepping_with_zero_input()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        TorchRuntime.Seed(7);
        var net = new ConvLstm(Inputs, Hidden, Kernel, 2, Side, Side);
        net.to(float64);
        var (_, state) = net.Forward(randn([2, 3, Inputs, Side, Side], float64, generator: new Generator(1)), null);
        var (hidden, _) = net.Unroll(4, state);
        var (outputs, _) = net.Forward(zeros([2, 4, Inputs, Side, Side], float64), state);
        Assert.Equal([2, 4, 2 * Hidden, Side, Side], hidden.shape);
        Assert.True(Equivalence.RelativeRms(hidden.narrow(2, Hidden, Hidden), outputs) <= 1e-12, "the top layer's H");
    }

    [Fact]
    public void An_even_kernel_is_refused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ConvLstmCell(1, 2, 4, 5, 5));
        Assert.Contains("odd", e.Message);
    }
}
