using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Convolutions as im2col and one matrix product (docs/architecture.md#libtorchs-cpu-convolutions). libtorch 2.10's
/// CPU conv1d and conv2d read memory they did not write for some shapes: after the heap held NaN, a 1 × 3 conv2d over
/// a one-row grid (the forecasting ConvLSTM's) and a 5 × 5 conv2d over 8 × 8 came out non-finite in 84–100% of calls,
/// which made the forecasters fail at random. unfold writes every column (zeros in the padding), and its product with
/// the flattened filters is the same convolution (cross-correlation, as libtorch's), forward and backward. The layers
/// keep libtorch's Conv1d/Conv2d modules for their parameters ("weight" [out, in, kh, kw], "bias" [out]) and their
/// initialisation, and call these instead of their forward.
/// </summary>
public static class Im2Col
{
    /// <summary>x [B, C, H, W], weight [O, C, kh, kw], bias [O] or null, zero padding (ph, pw), stride 1 → [B, O, H', W'].</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, (long H, long W) padding)
    {
        using var scope = NewDisposeScope();
        var (b, h, w) = (x.shape[0], x.shape[2], x.shape[3]);
        var (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3]);
        long outH = h + 2 * padding.H - kh + 1, outW = w + 2 * padding.W - kw + 1;
        var columns = nn.functional.unfold(x, (kh, kw), padding: padding);           // [B, C·kh·kw, H'·W']
        var y = weight.reshape(o, -1).matmul(columns);                                 // [B, O, H'·W']
        if (bias is not null) y = y + bias.unsqueeze(-1);
        return y.view(b, o, outH, outW).MoveToOuterDisposeScope();
    }

    /// <summary>x [B, C, L], weight [O, C, k], bias [O] or null, zero padding p, stride 1 → [B, O, L + 2p − k + 1].</summary>
    public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias, long padding)
    {
        using var scope = NewDisposeScope();
        var y = Conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (0, padding));      // as one row: [B, O, 1, L']
        return y.squeeze(2).MoveToOuterDisposeScope();
    }
}
