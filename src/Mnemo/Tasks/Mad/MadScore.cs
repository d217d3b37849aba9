namespace Mnemo.Tasks.Mad;

/// <summary>A task's difficulty changes, each varied alone from the baseline (docs/tasks.md#baselines-and-difficulty-settings, mad-lab's
/// configs/tasks/*.yml).</summary>
public sealed record MadDifficulty(int[] VocabSize, int[] SeqLen, int[] NumTrainExamples, double[] FracNoise, int[] NumTokensToCopy)
{
    static readonly int[] Examples = [6400, 3200, 1600, 800];

    public static MadDifficulty Of(MadTask task) => task switch
    {
        MadTask.InContextRecall or MadTask.FuzzyInContextRecall => new([32, 64, 128], [256, 512, 1024], Examples, [], []),
        MadTask.NoisyInContextRecall => new([48, 80, 144], [256, 512, 1024], Examples, [0.4, 0.6, 0.8], []),   // 16 noise tokens on top
        MadTask.SelectiveCopying => new([32, 64, 128], [512, 1024], Examples, [], [32, 64, 96]),
        MadTask.Compression => new([32, 64, 128], [64, 128, 256], Examples, [], []),
        MadTask.Memorization => new([512, 1024, 2048, 4096, 8192], [], [], [], []),
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, null),
    };
}

/// <summary>
/// The MAD score (docs/tasks.md#mad-score): per task, the mean test accuracy over its difficulty settings, the baseline
/// and each change varied alone. MAD takes the best run of an lr × weight-decay sweep per setting before averaging.
/// </summary>
public static class MadScore
{
    /// <summary>The settings of a task: the baseline first, then one config per change (other fields from
    /// <paramref name="template"/>, e.g. seeds and test size).</summary>
    public static IReadOnlyList<MadConfig> Settings(MadTask task, MadConfig? template = null)
    {
        var b = (template ?? new MadConfig()) with { Task = task, VocabSize = 0, SeqLen = 0, NumTrainExamples = 0 };
        var d = MadDifficulty.Of(task);
        return
        [
            b,
            .. d.VocabSize.Select(v => b with { VocabSize = v }),
            .. d.SeqLen.Select(l => b with { SeqLen = l }),
            .. d.NumTrainExamples.Select(n => b with { NumTrainExamples = n }),
            .. d.FracNoise.Select(f => b with { FracNoise = f }),
            .. d.NumTokensToCopy.Select(c => b with { NumTokensToCopy = c }),
        ];
    }

    /// <summary>Mean of the settings' test accuracies (one per setting, in [0, 1]).</summary>
    public static double Score(IReadOnlyCollection<double> accuracies) =>
        accuracies.Count == 0 ? throw new ArgumentException("no accuracies to average", nameof(accuracies)) : accuracies.Average();
}
