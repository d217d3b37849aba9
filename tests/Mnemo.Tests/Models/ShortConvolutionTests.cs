using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>The short convolution against libtorch's depthwise conv1d with left padding, and its streaming form.</summary>
[Collection(TorchCollection.Name)]
public class ShortConvolutionTests
{
    [Theory]
    [InlineData(4, false, 2, 9, 6)]
    [InlineData(4, true, 3, 1, 5)]
    [InlineData(1, true, 1, 4, 3)]
    [InlineData(3, false, 2, 2, 7)]
    public void Matches_the_per_tap_definition_in_outputs_and_every_gradient(int kernel, bool hasBias, int b, int t, int d)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(11);
        var conv = new ShortConvolution(d, kernel, hasBias);
        conv.to(float64);
        var x = randn([b, t, d], dtype: float64).requires_grad_(true);
        var up = randn([b, t, d], dtype: float64);

        var y = conv.forward(x);
        y.backward([up]);
        var (dx, dw, db) = (x.grad!.clone(), Param(conv, "weight").grad!.clone(), hasBias ? Param(conv, "bias").grad!.clone() : null);

        x.grad!.zero_();
        conv.zero_grad();
        var w = Param(conv, "weight");
        var bias = hasBias ? Param(conv, "bias") : null;
        // An independent form: libtorch's depthwise conv1d over [B, D, T], left-padded with K − 1 zeros.
        var padded = nn.functional.pad(x.transpose(1, 2), [kernel - 1, 0]);                     // [B, D, T+K−1]
        var reference = nn.functional.silu(nn.functional.conv1d(padded, w, bias, groups: d)).transpose(1, 2);
        reference.backward([up]);

        Assert.True(Equivalence.RelativeRms(y, reference) <= 1e-12, "output");
        Assert.True(Equivalence.RelativeRms(dx, x.grad!) <= 1e-12, "d x");
        Assert.True(Equivalence.RelativeRms(dw, w.grad!) <= 1e-12, "d weight");
        if (hasBias) Assert.True(Equivalence.RelativeRms(db!, bias!.grad!) <= 1e-12, "d bias");
    }

    [Fact]
    public void Two_streamed_calls_equal_one()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        TorchRuntime.Seed(12);
        var conv = new ShortConvolution(5, 4);
        conv.to(float64);
        var x = randn([2, 11, 5], dtype: float64);
        using var cache = new LayerCache();
        var pieces = cat([conv.Forward(x.narrow(1, 0, 2), cache, "c"), conv.Forward(x.narrow(1, 2, 1), cache, "c"),
            conv.Forward(x.narrow(1, 3, 8), cache, "c")], 1);
        Assert.True(Equivalence.RelativeRms(pieces, conv.forward(x)) <= 1e-14);
    }

    /// <summary>
    /// The fused node (FusedConvolution, fp32) against the composed ops in fp64 on the same values: outputs and every
    /// gradient. Sequences shorter than the kernel, a kernel of 1, a bias, and pre-activations far into both tails of the
    /// SiLU; sequences split into blocks of rows across threads (64 rows; 141 at 40 × 900, which keeps the blocks
    /// near 256), the last one short; channels beyond the taps' passed through (<paramref name="passed"/>,
    /// in fp64 a slice and a concatenation), as many as a memory mixer's output gate or an odd number.
    /// </summary>
    [Theory]
    [InlineData(4, false, 2, 9, 16, 1.0, 0)]
    [InlineData(4, true, 3, 70, 48, 1.0, 0)]
    [InlineData(4, true, 2, 2, 32, 1.0, 0)]
    [InlineData(6, false, 1, 3, 16, 1.0, 0)]
    [InlineData(1, true, 2, 5, 16, 1.0, 0)]
    [InlineData(4, false, 5, 64, 192, 8.0, 0)]
    [InlineData(4, false, 3, 9, 16, 1.0, 16)]
    [InlineData(4, true, 2, 70, 48, 1.0, 5)]
    [InlineData(4, false, 5, 64, 192, 8.0, 64)]
    [InlineData(4, true, 1, 200, 32, 1.0, 3)]
    [InlineData(3, true, 40, 900, 16, 1.0, 0)]
    public void The_fused_node_matches_the_composed_ops_in_fp64_in_outputs_and_every_gradient(int kernel, bool hasBias, int b, int t,
        int d, double scale, int passed)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(13);
        var conv = new ShortConvolution(d, kernel, hasBias);
        var x = randn([b, t, d + passed]) * scale;
        var up = randn([b, t, d + passed]);
        var w = Param(conv, "weight");
        var bias = hasBias ? Param(conv, "bias") : null;
        if (TileGemm.Supported) Assert.True(FusedConvolution.Applies(x, w, bias), "the fp32 call takes the fused node");

        (Tensor Y, Tensor[] Grads) Run(ScalarType dtype)
        {
            var xi = x.detach().to(dtype).requires_grad_(true);
            var wi = w.detach().to(dtype).requires_grad_(true);
            var bi = bias?.detach().to(dtype).requires_grad_(true);
            var y = ShortConvolution.Convolve(xi, wi, bi, null, "");
            y.backward([up.to(dtype)]);
            return (y.detach(), bi is null ? [xi.grad!, wi.grad!] : [xi.grad!, wi.grad!, bi.grad!]);
        }
        var (y32, grads32) = Run(float32);
        var (y64, grads64) = Run(float64);
        Assert.True(Equivalence.RelativeRms(y32, y64) <= 1e-6, $"output: {Equivalence.RelativeRms(y32, y64):E2}");
        string[] names = ["d x", "d weight", "d bias"];
        for (int i = 0; i < grads64.Length; i++)
            Assert.True(Equivalence.RelativeRms(grads32[i], grads64[i]) <= 1e-6,
                $"{names[i]}: {Equivalence.RelativeRms(grads32[i], grads64[i]):E2}");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    public void A_stream_that_starts_with_the_fused_node_continues_as_one_call(int passed)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        TorchRuntime.Seed(14);
        var conv = new ShortConvolution(32, 4);
        var x = randn([2, 13, 32 + passed]);
        using var cache = new LayerCache();
        var pieces = cat([conv.Forward(x.narrow(1, 0, 2), cache, "c"), conv.Forward(x.narrow(1, 2, 1), cache, "c"),
            conv.Forward(x.narrow(1, 3, 10), cache, "c")], 1);
        Assert.True(Equivalence.RelativeRms(pieces, conv.forward(x)) <= 1e-6);
    }

    static TorchSharp.Modules.Parameter Param(nn.Module m, string name) => m.named_parameters().Single(p => p.name == name).parameter;
}
