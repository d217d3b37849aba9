using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>
/// The ConvLSTM forecaster of the forecasting review (docs/forecasting.md#the-reviews-convlstm-and-cnn): the window of
/// L steps is cut into L / s subsequences of s steps; each subsequence is a one-row grid of s cells with the F features
/// as channels, and one <see cref="ConvLstm"/> layer (1 × k kernels, d channels) reads the subsequences in order. A
/// linear head maps its final H (d × s values) to the outputs.
/// </summary>
public sealed class ConvLstmWindow : nn.Module<Tensor, Tensor>
{
    readonly ConvLstm convlstm;
    readonly Linear head;
    readonly int _subsequence;

    public ConvLstmWindow(int inputs, int outputs, int channels, int kernel, int subsequence) : base(nameof(ConvLstmWindow))
    {
        _subsequence = subsequence;
        convlstm = new ConvLstm(inputs, channels, kernel, 1, 1, subsequence);
        head = nn.Linear((long)channels * subsequence, outputs);
        RegisterComponents();
    }

    /// <param name="window">[B, L, F], L a multiple of s</param>
    /// <returns>[B, outputs]</returns>
    public override Tensor forward(Tensor window)
    {
        using var scope = NewDisposeScope();
        var (_, state) = convlstm.Forward(Subsequences(window, _subsequence), null);
        return head.forward(state[0].H.flatten(1)).MoveToOuterDisposeScope();
    }

    /// <summary>A window [B, L, F] as L / s one-row grids [B, L / s, F, 1, s]: cell j of grid n is step n·s + j.</summary>
    public static Tensor Subsequences(Tensor window, int s)
    {
        var (b, l, f) = (window.shape[0], window.shape[1], window.shape[2]);
        if (l % s != 0) throw new ArgumentException($"a window of {l} steps does not split into subsequences of {s}", nameof(window));
        return window.view(b, l / s, s, f).permute(0, 1, 3, 2).unsqueeze(3);
    }
}

/// <summary>
/// The CNN forecaster of the forecasting review (docs/forecasting.md#the-reviews-convlstm-and-cnn): two 1-D
/// convolutions over time (d filters, kernel k, same padding, ReLU), max pooling by 2, and a dense layer of d units
/// (ReLU) before the linear head.
/// </summary>
public sealed class CnnWindow : nn.Module<Tensor, Tensor>
{
    readonly Conv1d conv1, conv2;
    readonly Linear dense, head;
    readonly long _padding;

    public CnnWindow(int inputs, int outputs, int channels, int kernel, int window) : base(nameof(CnnWindow))
    {
        _padding = kernel / 2;
        conv1 = nn.Conv1d(inputs, channels, kernel, padding: kernel / 2);
        conv2 = nn.Conv1d(channels, channels, kernel, padding: kernel / 2);
        dense = nn.Linear((long)channels * (window / 2), channels);
        head = nn.Linear(channels, outputs);
        RegisterComponents();
    }

    /// <param name="window">[B, L, F]</param>
    /// <returns>[B, outputs]</returns>
    public override Tensor forward(Tensor window)
    {
        using var scope = NewDisposeScope();
        // libtorch's conv1d is not used: it can read memory it did not write (Im2Col).
        var h = nn.functional.relu(Im2Col.Conv1d(window.transpose(1, 2), conv1.weight!, conv1.bias, _padding));   // [B, d, L]
        h = nn.functional.max_pool1d(nn.functional.relu(Im2Col.Conv1d(h, conv2.weight!, conv2.bias, _padding)), 2); // [B, d, L / 2]
        return head.forward(nn.functional.relu(dense.forward(h.flatten(1)))).MoveToOuterDisposeScope();
    }
}
