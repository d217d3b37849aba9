using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Forecasting;

/// <summary>Which series, which columns, and the walk-forward protocol (docs/forecasting.md).</summary>
public sealed record ForecastDataConfig : IValidatedConfig
{
    [Help("series name (eustockmarkets, set up by scripts/setup-series.sh; generated) or a CSV file with a header")]
    public string Series { get; init; } = "eustockmarkets";
    [Help("the columns the model reads; empty = every column (one column: univariate)")] public string[] Columns { get; init; } = [];
    [Help("the columns forecast, among columns; empty = all of columns")] public string[] Targets { get; init; } = [];
    [Help("steps of history each forecast reads"), Range(2, 100_000)] public int Window { get; init; } = 64;
    [Help("steps ahead forecast from each origin"), Range(1, 10_000)] public int Horizon { get; init; } = 10;
    [Help("walk-forward folds over the test part; fold k trains on everything before its test segment"), Range(1, 100)]
    public int Folds { get; init; } = 3;
    [Help("fraction of the series (at its end) forecast out of sample, split into the folds' test segments"), Range(0.01, 0.9)]
    public double TestFraction { get; init; } = 0.3;
    [Help("season of the seasonal-naive baseline, in steps (5: a trading week)"), Range(1, 100_000)] public int Season { get; init; } = 5;

    public IEnumerable<(string, string)> Validate()
    {
        var missing = Targets.Where(t => Columns.Length > 0 && !Columns.Contains(t)).ToArray();
        if (missing.Length > 0) yield return ("targets", $"{string.Join(", ", missing)} not among columns");
    }
}

/// <summary>The sequence model a forecast uses (docs/forecasting.md#protocol, docs/forecasting.md#the-reviews-convlstm-and-cnn).</summary>
public enum ForecasterKind
{
    /// <summary>Mnemo's blocks of model.mixer (or model.layer_mixers), a head on the last step (<see cref="WindowModel"/>).</summary>
    Blocks,
    /// <summary>The review's ConvLSTM over subsequences of the window (<see cref="ConvLstmWindow"/>).</summary>
    ConvLstm,
    /// <summary>The review's 1-D CNN (<see cref="CnnWindow"/>).</summary>
    Cnn,
}

/// <summary>The review's ConvLSTM and CNN forecasters' shape; their channels are model.d_model.</summary>
public sealed record ConvForecastConfig
{
    [Help("steps per subsequence of the ConvLSTM forecaster (the window must be a multiple)"), Range(1, 100_000)]
    public int Subsequence { get; init; } = 8;
    [Help("odd kernel width of the ConvLSTM and CNN forecasters' convolutions over time"), Range(1, 99)]
    public int Kernel { get; init; } = 3;
}

/// <summary>A forecasting run: the series and protocol, the sequence model (any mixer) and its training.</summary>
public sealed record ForecastConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public ForecastDataConfig Data { get; init; } = new();
    [Help("the sequence model: blocks (of model.mixer), conv_lstm or cnn (the review's forecasters, shaped by conv and " +
        "model.d_model)")]
    public ForecasterKind Forecaster { get; init; } = ForecasterKind.Blocks;
    public ConvForecastConfig Conv { get; init; } = new();
    public ModelConfig Model { get; init; } = new() { DModel = 32, NumLayers = 2, NumHeads = 2, MlpRatio = 2 };
    public TrainingConfig Training { get; init; } = new() { Steps = 400, BatchSize = 32, Lr = 1e-3, WarmupSteps = 40, WeightDecay = 0.01 };

    public IEnumerable<(string, string)> Validate()
    {
        if (Forecaster == ForecasterKind.ConvLstm && Data.Window % Conv.Subsequence != 0)
            yield return ("conv.subsequence", $"{Conv.Subsequence} does not divide data.window ({Data.Window})");
        if (Forecaster != ForecasterKind.Blocks && Conv.Kernel % 2 == 0) yield return ("conv.kernel", $"must be odd, got {Conv.Kernel}");
    }

    /// <summary>The model <see cref="Forecaster"/> names: F input features per step, <paramref name="outputs"/> values out.</summary>
    public nn.Module<Tensor, Tensor> BuildModel(int inputs, int outputs) => Forecaster switch
    {
        ForecasterKind.ConvLstm => new ConvLstmWindow(inputs, outputs, Model.DModel, Conv.Kernel, Conv.Subsequence),
        ForecasterKind.Cnn => new CnnWindow(inputs, outputs, Model.DModel, Conv.Kernel, Data.Window),
        _ => new WindowModel(Model, inputs, outputs),
    };

    /// <summary>
    /// A config file over the defaults above, then "field=value" overrides. The defaults are spelled out first, so a
    /// section the file or an override names keeps the forecaster's defaults for the fields it leaves out (a bare
    /// <c>"model": {…}</c> would otherwise start from the language model's).
    /// </summary>
    public static ForecastConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new ForecastConfig(), file, overrides ?? [], "the default forecast config");

    public string ToJson() => ConfigBinder.ToJson(this);
}
