using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Training;

namespace Mnemo.Classification;

/// <summary>The output layers a sequence classifier can end in (docs/classification.md#the-heads).</summary>
public enum HeadKind
{
    /// <summary>Agarap's L2-SVM: one-vs-rest scores trained with the squared hinge loss and a weight penalty.</summary>
    Svm,
    /// <summary>Softmax over the scores, trained with cross-entropy.</summary>
    Softmax,
}

/// <summary>Which dataset, how its features are read as a sequence, and the cross-validation (docs/classification.md).</summary>
public sealed record ClassifyDataConfig : IValidatedConfig
{
    [Help("dataset name (wdbc, set up by scripts/setup-datasets.sh; generated) or a CSV file: a header, numeric features, " +
        "the class label last")]
    public string Dataset { get; init; } = "wdbc";
    [Help("steps the features are read as: feature j of step t is column t + steps·j (WDBC's 30 columns at 10 steps: " +
        "each measurement's mean, standard error and worst value at one step); must divide the number of features"),
     Range(1, 100_000)]
    public int Steps { get; init; } = 10;
    [Help("stratified cross-validation folds; every example is tested once per seed"), Range(2, 100)]
    public int Folds { get; init; } = 5;
    [Help("the class counted as positive in precision, recall and false-positive rate (its label); empty = the last " +
        "class in label order (WDBC: M, malignant)")]
    public string Positive { get; init; } = "";

    public IEnumerable<(string, string)> Validate() => [];
}

/// <summary>A classification study: the data, the sequence model (any mixer), the SVM head's constant and training.</summary>
public sealed record ClassifyConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public ClassifyDataConfig Data { get; init; } = new();
    public ModelConfig Model { get; init; } = new() { DModel = 64, NumLayers = 1, NumHeads = 1, MlpRatio = 2, Mixer = MixerKind.Gru };
    [Help("C of the L2-SVM head: the weight of the squared hinge against the penalty on the head's weights (Agarap's " +
        "WDBC study: 5)"), Range(1e-6, 1e6)]
    public double SvmC { get; init; } = 5;
    public TrainingConfig Training { get; init; } = new() { Steps = 600, BatchSize = 64, Lr = 1e-3, WarmupSteps = 30, WeightDecay = 0.01 };

    public IEnumerable<(string, string)> Validate() => [];

    /// <summary>A config file over the defaults above, then "field=value" overrides (see <see cref="ConfigBinder.LoadOver"/>).</summary>
    public static ClassifyConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new ClassifyConfig(), file, overrides ?? [], "the default classify config");

    public string ToJson() => ConfigBinder.ToJson(this);
}
