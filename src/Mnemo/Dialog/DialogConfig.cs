using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Training;

namespace Mnemo.Dialog;

/// <summary>The generated dialogs and their candidate answers (docs/dialog.md#the-dialogs).</summary>
public sealed record DialogDataConfig : IValidatedConfig
{
    [Help("training dialogs of ten rounds each"), Range(1, 10_000_000)] public int TrainDialogs { get; init; } = 20_000;
    [Help("test dialogs, generated apart from the training ones"), Range(1, 1_000_000)] public int TestDialogs { get; init; } = 500;
    [Help("seed of the dialogs and their candidates (the same data for every model seed)"), Range(0, int.MaxValue)]
    public int Seed { get; init; }
    [Help("candidate answers per question, the human answer among them (VisDial: 100)"), Range(2, 1000)]
    public int Candidates { get; init; } = 100;
    [Help("candidates drawn from the answers given to the same question template in training (VisDial: 50 answers to " +
        "similar questions)"), Range(0, 1000)]
    public int Plausible { get; init; } = 50;
    [Help("candidates that are the most frequent training answers (VisDial: 30)"), Range(0, 1000)]
    public int Popular { get; init; } = 30;

    public IEnumerable<(string, string)> Validate() => CandidateSets.Problems(Candidates, Plausible, Popular);
}

/// <summary>The Visual Dialog study: the dialogs, every reader's shape (any mixer), the training.</summary>
public sealed record DialogConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public DialogDataConfig Data { get; init; } = new();
    [Help("the shape of every reader (question, history, facts, scene, answers, HRE's dialog level); the paper's are LSTMs")]
    public ModelConfig Model { get; init; } = new()
    {
        DModel = 64, NumLayers = 1, NumHeads = 1, MlpRatio = 0, Mixer = MixerKind.Lstm,
    };
    public TrainingConfig Training { get; init; } = new()
    {
        Steps = 3000, BatchSize = 16, Lr = 2e-3, WarmupSteps = 100, WeightDecay = 0.01, LogEvery = 250,
    };
    [Help("test dialogs per evaluation batch"), Range(1, 100_000)] public int EvalBatch { get; init; } = 50;

    public IEnumerable<(string, string)> Validate() => [];

    /// <summary>A config file over the defaults above, then "field=value" overrides (see <see cref="ConfigBinder.LoadOver"/>).</summary>
    public static DialogConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new DialogConfig(), file, overrides ?? [], "the default dialog config");

    public string ToJson() => ConfigBinder.ToJson(this);
}
