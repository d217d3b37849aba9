using Mnemo.Layers;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Experiments;

/// <summary>The two recall tasks of the length-extrapolation experiment.</summary>
public enum ExtrapolationTask { Mqar, Passkey }

/// <summary>
/// One length-extrapolation setting: which mixers (all at the same width, depth and heads), trained at one length
/// on which tasks, evaluated at which multiples of it, with which learning rates. `mnemo collapse` trains by it;
/// `mnemo extrapolate` runs the bundled sweeps extrapolate and extrapolate-quick, which a test holds equal to
/// <see cref="Default"/> and <see cref="Quick"/>.
/// </summary>
public sealed record ExtrapolationSettings
{
    public required string Name { get; init; }
    public required MixerKind[] Mixers { get; init; }
    public ExtrapolationTask[] Tasks { get; init; } = [ExtrapolationTask.Mqar, ExtrapolationTask.Passkey];
    public int DModel { get; init; } = 64;
    public int NumLayers { get; init; } = 2;
    public int NumHeads { get; init; } = 2;

    /// <summary>Training length L; every task trains at L only.</summary>
    public required int TrainLength { get; init; }

    /// <summary>Evaluation lengths as multiples of L.</summary>
    public int[] EvalFactors { get; init; } = [1, 2, 4];

    /// <summary>MQAR keeps K pairs at every length: only the distances and the filler grow (see the class remarks).</summary>
    public int MqarPairs { get; init; } = 8;
    public int MqarVocab { get; init; } = 512;
    public int PasskeyDigits { get; init; } = 5;
    public int PasskeyVocab { get; init; } = 64;
    public HaystackKind Haystack { get; init; } = HaystackKind.Repeat;

    public int TrainExamples { get; init; } = 8000;
    /// <summary>Test set at L the trainer evaluates on: it picks the learning rate and stops early.</summary>
    public int ValidationExamples { get; init; } = 500;
    /// <summary>Examples per evaluation length, from their own seed, scored once after training.</summary>
    public int EvalExamples { get; init; } = 500;
    public const int EvalSeed = 3;

    public required double[] LearningRates { get; init; }
    public required int Steps { get; init; }
    public int BatchSize { get; init; } = 64;
    public int EvalEvery { get; init; } = 100;
    public double TargetAccuracy { get; init; } = 0.99;

    public int[] EvalLengths => LengthGrid.Lengths(TrainLength, EvalFactors);

    /// <summary>
    /// Fits in about 10 minutes on 2 cores: d_model 64, 2 layers, 2 heads, no MLP (Zoology's MQAR shape), L = 64,
    /// evaluated at 64, 128 and 256.
    /// </summary>
    public static ExtrapolationSettings Default => new()
    {
        Name = "default",
        // Titans' LMM against the strongest matrix memory: the comparison of the Titans paper's S-NIAH table.
        Mixers = [MixerKind.Titans, MixerKind.GatedDeltaNet],
        TrainLength = 64,
        LearningRates = [3e-3],
        Steps = 800,
    };

    /// <summary>Test-sized: seconds, to check the plumbing, not to measure anything.</summary>
    public static ExtrapolationSettings Quick => new()
    {
        Name = "quick",
        Mixers = [MixerKind.Titans, MixerKind.GatedDeltaNet],
        DModel = 16,
        TrainLength = 32,
        MqarPairs = 2,
        MqarVocab = 160,
        PasskeyDigits = 3,
        PasskeyVocab = 32,
        TrainExamples = 64,
        ValidationExamples = 16,
        EvalExamples = 16,
        LearningRates = [1e-3, 1e-2],
        Steps = 6,
        BatchSize = 8,
        EvalEvery = 3,
    };

    /// <summary>The same model for every task and mixer but the mixer (and the task's vocabulary). Rotary
    /// positions have no table; max_positions still covers the longest evaluation, in case positions are learned.</summary>
    public ModelConfig Model(MixerKind mixer) => new()
    {
        Mixer = mixer, DModel = DModel, NumLayers = NumLayers, NumHeads = NumHeads, MlpRatio = 0,
        MaxPositions = Math.Max(EvalLengths.Max(), TrainLength),
    };

    /// <summary>The training run of one (task, mixer, learning rate): train at L, validate at L.</summary>
    public RunConfig RunConfig(ExtrapolationTask task, MixerKind mixer, double lr)
    {
        var run = new RunConfig
        {
            Description = $"extrapolate {Name}: {task} {mixer} lr {lr:G3}",
            Model = Model(mixer),
            Training = new TrainingConfig
            {
                Steps = Steps, BatchSize = BatchSize, Lr = lr, WarmupSteps = Math.Min(100, Steps / 10), EvalEvery = EvalEvery,
                CheckpointEvery = EvalEvery, TargetAccuracy = TargetAccuracy, KeepCheckpoints = 1,
            },
        };
        return task == ExtrapolationTask.Mqar
            ? run with { Task = Mqar([new() { SeqLen = TrainLength, NumKvPairs = MqarPairs, NumExamples = ValidationExamples }]) }
            : run with { Task = Passkey([new() { SeqLen = TrainLength, NumExamples = ValidationExamples, Depths = DepthKind.Even }]) };
    }

    /// <summary>The task with its test slices replaced by one slice per evaluation length, drawn from <see cref="EvalSeed"/>.</summary>
    public ITask EvalTask(ExtrapolationTask task) =>
        LengthGrid.TestAt(RunConfig(task, Mixers[0], LearningRates[0]).Task, EvalLengths, EvalExamples, EvalSeed);

    MqarConfig Mqar(MqarSlice[] test) => new()
    {
        VocabSize = MqarVocab,
        Train = [new() { SeqLen = TrainLength, NumKvPairs = MqarPairs, NumExamples = TrainExamples }],
        Test = test,
    };

    PasskeyConfig Passkey(PasskeySlice[] test) => new()
    {
        VocabSize = PasskeyVocab,
        NumDigits = PasskeyDigits,
        Haystack = Haystack,
        Train = [new() { SeqLen = TrainLength, NumExamples = TrainExamples }],
        Test = test,
    };
}
