using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// The fused row norms (fp32, CPU) against the composed libtorch ops they replace, run in fp64 on the same values:
/// outputs and every gradient. Row counts below and above the size at which the rows are split across threads.
/// </summary>
[Collection(TorchCollection.Name)]
public class FusedNormsTests
{
    const double Tolerance = 1e-6;                                            // fp32 rounding of a few passes

    public enum Gate { None, After, First }

    [Theory]
    [InlineData(3, 8, Gate.None)]
    [InlineData(3, 8, Gate.After)]
    [InlineData(3, 8, Gate.First)]
    [InlineData(700, 32, Gate.None)]
    [InlineData(700, 32, Gate.After)]
    [InlineData(700, 32, Gate.First)]
    [InlineData(1030, 64, Gate.After)]
    public void RmsNorm_matches_the_composed_ops_in_outputs_and_every_gradient(int rows, int d, Gate gate)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(21);
        var fused = new GatedRMSNorm(d, 1e-5, gateFirst: gate == Gate.First);
        var composed = new GatedRMSNorm(d, 1e-5, gateFirst: gate == Gate.First);
        using (no_grad())
        {
            var w = randn(d) * 0.5 + 1;
            Weight(fused).copy_(w);
            composed.to(float64);
            Weight(composed).copy_(w);
        }
        // Rows of very different scales, so the per-row 1/rms matters.
        var x = randn(rows, d) * exp(randn(rows, 1) * 2);
        var g = gate == Gate.None ? null : randn(rows, d) * 3;
        var up = randn(rows, d);

        var (y32, grads32) = Run(fused, x, g, up, float32);
        var (y64, grads64) = Run(composed, x, g, up, float64);
        Assert.True(Equivalence.RelativeRms(y32, y64) <= Tolerance, "output");
        string[] names = ["d x", "d weight", "d gate"];
        for (int i = 0; i < grads64.Length; i++)
            Assert.True(Equivalence.RelativeRms(grads32[i], grads64[i]) <= Tolerance,
                $"{names[i]}: {Equivalence.RelativeRms(grads32[i], grads64[i]):E2}");
    }

    [Fact]
    public void RmsNorm_module_without_gate_matches_the_composed_ops()
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(22);
        var fused = new RMSNorm(16);
        var composed = new RMSNorm(16);
        composed.to(float64);
        var x = randn(2, 300, 16).requires_grad_();
        var x64 = x.detach().to(float64).requires_grad_();
        var up = randn(2, 300, 16);
        var y = fused.forward(x);
        y.backward([up]);
        var y64 = composed.forward(x64);
        y64.backward([up.to(float64)]);
        Assert.True(Equivalence.RelativeRms(y, y64) <= Tolerance, "output");
        Assert.True(Equivalence.RelativeRms(x.grad!, x64.grad!) <= Tolerance, "d x");
        Assert.True(Equivalence.RelativeRms(Weight(fused).grad!, Weight(composed).grad!) <= Tolerance, "d weight");
    }

    [Theory]
    [InlineData(4, 8)]
    [InlineData(900, 32)]
    public void L2Norm_matches_its_formula_in_fp64_including_rows_below_epsilon(int rows, int d)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(23);
        var x = randn(rows, d) * exp(randn(rows, 1));
        x[1].mul_(1e-8);                                                      // ‖x‖² ≪ ε: ε dominates
        x[2].zero_();
        var up = randn(rows, d);
        const double scale = 0.37, eps = 1e-6;

        var x32 = x.clone().requires_grad_();
        var y32 = FusedNorms.L2Norm(x32, scale, eps);
        y32.backward([up]);
        var x64 = x.to(float64).requires_grad_();
        var y64 = x64 / (x64.square().sum(-1, keepdim: true) + eps).sqrt() * scale;
        y64.backward([up.to(float64)]);
        Assert.True(Equivalence.RelativeRms(y32, y64) <= Tolerance, "output");
        Assert.True(Equivalence.RelativeRms(x32.grad!, x64.grad!) <= Tolerance, "d x");
    }

    [Fact]
    public void Gradients_are_the_same_on_every_run()
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(24);
        var norm = new GatedRMSNorm(32);
        var x = randn(1000, 32);
        var g = randn(1000, 32);
        var up = randn(1000, 32);
        var first = Run(norm, x, g, up, float32).Grads;
        var second = Run(norm, x, g, up, float32).Grads;
        for (int i = 0; i < first.Length; i++) Assert.Equal(0.0, (first[i] - second[i]).abs().max().item<float>());
    }

    [Fact]
    public void Only_fp32_on_the_cpu_with_rows_of_whole_vectors_is_fused()
    {
        Assert.True(FusedNorms.Applies(zeros(3, 16, dtype: float32)));
        Assert.False(FusedNorms.Applies(zeros(3, 5, dtype: float32)));
        Assert.False(FusedNorms.Applies(zeros(3, 16, dtype: float64)));
        Assert.False(FusedNorms.Applies(zeros(3, 16, dtype: bfloat16)));
    }

    [Fact]
    public void Inputs_it_cannot_take_are_refused_by_name()
    {
        using var scope = NewDisposeScope();
        var x = randn(4, 16);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => FusedNorms.RmsNorm(x, ones(8), null, 1e-5)).ParamName);
        Assert.Equal("gate", Assert.Throws<ArgumentException>(() => FusedNorms.RmsNorm(x, ones(16), randn(4, 8), 1e-5)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => FusedNorms.L2Norm(randn(4, 5), 1, 1e-6)).ParamName);
    }

    /// <summary>The module's output and (d x, d weight[, d gate]) for x, gate and output gradient cast to dtype.</summary>
    static (Tensor Y, Tensor[] Grads) Run(GatedRMSNorm norm, Tensor x, Tensor? gate, Tensor up, ScalarType dtype)
    {
        norm.zero_grad();
        var xi = x.detach().to(dtype).requires_grad_();
        var gi = gate?.detach().to(dtype).requires_grad_();
        var y = norm.forward(xi, gi);
        y.backward([up.to(dtype)]);
        var w = Weight(norm);
        Tensor[] grads = gi is null ? [xi.grad!, w.grad!.clone()] : [xi.grad!, w.grad!.clone(), gi.grad!];
        return (y.detach(), grads);
    }

    static TorchSharp.Modules.Parameter Weight(nn.Module m) => m.named_parameters().Single(p => p.name == "weight").parameter;
}
