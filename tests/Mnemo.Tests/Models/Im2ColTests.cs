using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// The convolutions Mnemo runs as im2col and a product (docs/architecture.md#libtorchs-cpu-convolutions): they equal the
/// definition, and they stay finite when the heap the process reuses holds NaN, where libtorch's own conv1d/conv2d
/// read it for these shapes.
/// </summary>
[Collection(TorchCollection.Name)]                                      // seeds the global generator
public class Im2ColTests
{
    /// <summary>The definition: y[b, o, i, j] = bias[o] + Σ_{c, p, q} w[o, c, p, q] · x_padded[b, c, i + p, j + q].</summary>
    static Tensor Reference(Tensor x, Tensor w, Tensor? bias, (long H, long W) padding)
    {
        var padded = nn.functional.pad(x, [padding.W, padding.W, padding.H, padding.H]);
        long outH = padded.shape[2] - w.shape[2] + 1, outW = padded.shape[3] - w.shape[3] + 1;
        var y = zeros(x.shape[0], w.shape[0], outH, outW, dtype: x.dtype);
        for (long p = 0; p < w.shape[2]; p++)
            for (long q = 0; q < w.shape[3]; q++)
                y = y + einsum("bchw,oc->bohw", padded.narrow(2, p, outH).narrow(3, q, outW), w.select(2, p).select(2, q));
        return bias is null ? y : y + bias.view(1, -1, 1, 1);
    }

    /// <summary>Frees tensors full of NaN, so the next allocations of these sizes reuse memory holding NaN.</summary>
    static void PoisonHeap()
    {
        foreach (long n in new long[] { 1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20 })
        {
            using var t = full(n, double.NaN);
        }
    }

    [Theory]
    [InlineData(2, 19, 64, 1, 4, 1, 3, 0, 1)]     // the forecasting ConvLSTM: a one-row grid, 1 × 3 filters
    [InlineData(3, 17, 8, 8, 8, 5, 5, 2, 2)]      // the grid ConvLSTM: 5 × 5 "same" filters
    [InlineData(1, 3, 5, 6, 7, 3, 2, 0, 0)]       // uneven filters, no padding
    public void Conv2d_equals_its_definition_with_every_gradient(int b, int c, int o, int h, int w, int kh, int kw, int ph, int pw)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(3);
        var x = randn(b, c, h, w, dtype: float64).requires_grad_();
        var weight = randn(o, c, kh, kw, dtype: float64).requires_grad_();
        var bias = randn(o, dtype: float64).requires_grad_();
        var up = randn(b, o, h + 2 * ph - kh + 1, w + 2 * pw - kw + 1, dtype: float64);
        var y = Im2Col.Conv2d(x, weight, bias, (ph, pw));
        var grads = autograd.grad([y], [x, weight, bias], [up]);
        var yRef = Reference(x, weight, bias, (ph, pw));
        var refs = autograd.grad([yRef], [x, weight, bias], [up]);
        Assert.True(Equivalence.RelativeRms(y, yRef) <= 1e-12, "output");
        foreach (var (g, r, name) in grads.Zip(refs, new[] { "x", "weight", "bias" }))
            Assert.True(Equivalence.RelativeRms(g, r) <= 1e-12, $"d {name}");
        // Conv1d is the one-row case.
        var y1 = Im2Col.Conv1d(x.select(2, 0), weight.select(2, 0), null, pw);
        var y1Ref = Reference(x.narrow(2, 0, 1), weight.narrow(2, 0, 1), null, (0, pw)).squeeze(2);
        Assert.True(Equivalence.RelativeRms(y1, y1Ref) <= 1e-12, "conv1d");
    }

    [Fact]
    public void The_convolutional_forecasters_stay_finite_when_the_heap_holds_nan()
    {
        TorchRuntime.Seed(4);
        var convLstm = new ConvLstmWindow(inputs: 4, outputs: 12, channels: 16, kernel: 3, subsequence: 4);
        var cnn = new CnnWindow(inputs: 4, outputs: 12, channels: 16, kernel: 3, window: 8);
        var grid = new ConvLstm(inputs: 1, hidden: 8, kernel: 5, numLayers: 1, height: 8, width: 8);
        for (int i = 0; i < 30; i++)
        {
            using var scope = NewDisposeScope();
            var window = randn(8, 8, 4);                                     // [B, L, F]
            PoisonHeap();
            var outputs = new[] { convLstm.forward(window), cnn.forward(window), grid.forward(randn([2, 3, 1, 8, 8])) };
            stack(outputs.Select(t => t.sum()).ToArray()).sum().backward();
            Assert.All(outputs, t => Assert.True(isfinite(t).all().item<bool>(), $"call {i}: a non-finite output"));
            Assert.All(convLstm.parameters().Concat(cnn.parameters()).Concat(grid.parameters()),
                p => Assert.True(isfinite(p.grad!).all().item<bool>(), $"call {i}: a non-finite gradient"));
        }
    }
}
