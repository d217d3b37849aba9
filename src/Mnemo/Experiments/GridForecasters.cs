using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>A model that reads the first frames of a sequence of grids and predicts the next ones.</summary>
public interface IGridForecaster
{
    /// <summary>Pixel logits of the next <paramref name="future"/> frames: past [B, T_in, 1, S, S] → [B, future, 1, S, S].</summary>
    Tensor Forecast(Tensor past, int future);
}

/// <summary>
/// The ConvLSTM encoding-forecasting network of Shi et al. 2015 (docs/grid-forecast.md#the-models): an encoder of stacked
/// <see cref="ConvLstm"/> layers reads the input frames; a forecaster of the same shape starts from the encoder's final
/// states (copied, one layer to its counterpart), unrolls with no input, and a 1×1 convolution over the concatenation of
/// all its layers' H gives each future frame's pixel logits.
/// </summary>
public sealed class ConvLstmForecaster : nn.Module<Tensor, Tensor>, IGridForecaster
{
    readonly ConvLstm encoder, forecaster;
    readonly Conv2d readout;

    public ConvLstmForecaster(int size, int hidden, int kernel, int layers) : base(nameof(ConvLstmForecaster))
    {
        encoder = new ConvLstm(1, hidden, kernel, layers, size, size);
        forecaster = new ConvLstm(0, hidden, kernel, layers, size, size);
        readout = nn.Conv2d((long)layers * hidden, 1, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor past) => Forecast(past, (int)past.shape[1]);

    public Tensor Forecast(Tensor past, int future)
    {
        using var scope = NewDisposeScope();
        var (_, state) = encoder.Forward(past, null);
        var (hidden, _) = forecaster.Unroll(future, state);                          // [B, future, layers · hidden, S, S]
        var (b, s) = (hidden.shape[0], hidden.shape[3]);
        var logits = Im2Col.Conv2d(hidden.flatten(0, 1), readout.weight!, readout.bias, (0, 0)); // [B · future, 1, S, S]
        return logits.view(b, future, 1, s, s).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The FC-LSTM baseline of Shi et al. 2015 (the encoder-predictor LSTM of Srivastava et al. 2015): each frame flattened to
/// a vector of S² pixels, an encoder of stacked LSTM layers (libtorch's fused cell), a predictor LSTM of the same shape
/// that starts from the encoder's final (h, c) and unrolls with zero input, and a linear map from its top layer's h to
/// the S² pixel logits.
/// </summary>
public sealed class FcLstmForecaster : nn.Module<Tensor, Tensor>, IGridForecaster
{
    readonly LSTM encoder, predictor;
    readonly Linear readout;
    readonly int _pixels;

    public FcLstmForecaster(int size, int hidden, int layers) : base(nameof(FcLstmForecaster))
    {
        _pixels = size * size;
        encoder = nn.LSTM(_pixels, hidden, layers, batchFirst: true);
        predictor = nn.LSTM(1, hidden, layers, batchFirst: true);
        readout = nn.Linear(hidden, _pixels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor past) => Forecast(past, (int)past.shape[1]);

    public Tensor Forecast(Tensor past, int future)
    {
        using var scope = NewDisposeScope();
        var (b, s) = (past.shape[0], past.shape[3]);
        var (_, h, c) = encoder.forward(past.flatten(2), null);                      // frames as vectors [B, T_in, S²]
        var (output, _, _) = predictor.forward(zeros([b, future, 1], past.dtype, past.device), (h, c));
        return readout.forward(output).view(b, future, 1, s, s).MoveToOuterDisposeScope();
    }
}
