using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Training;

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

/// <summary>A forecasting run: the series and protocol, the sequence model (any mixer) and its training.</summary>
public sealed record ForecastConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public ForecastDataConfig Data { get; init; } = new();
    public ModelConfig Model { get; init; } = new() { DModel = 32, NumLayers = 2, NumHeads = 2, MlpRatio = 2 };
    public TrainingConfig Training { get; init; } = new() { Steps = 400, BatchSize = 32, Lr = 1e-3, WarmupSteps = 40, WeightDecay = 0.01 };

    public IEnumerable<(string, string)> Validate() => [];

    /// <summary>
    /// A config file over the defaults above, then "field=value" overrides. The defaults are spelled out first, so a
    /// section the file or an override names keeps the forecaster's defaults for the fields it leaves out (a bare
    /// <c>"model": {…}</c> would otherwise start from the language model's).
    /// </summary>
    public static ForecastConfig Load(string? file, IEnumerable<string>? overrides = null)
    {
        string source = file ?? "the default forecast config";
        var root = (JsonObject)JsonNode.Parse(new ForecastConfig().ToJson())!;
        if (file is not null)
        {
            Paths.CheckReadable(file, "config file");
            if (ConfigBinder.ParseText(File.ReadAllText(file), file) is not JsonObject given)
                throw new ConfigException($"{file}: expected a JSON object at the top level");
            ConfigBinder.Merge(root, given);
        }
        ConfigBinder.ApplyOverrides<ForecastConfig>(root, overrides ?? []);
        return ConfigBinder.Bind<ForecastConfig>(root, source);
    }

    public string ToJson() => ConfigBinder.ToJson(this);
}
