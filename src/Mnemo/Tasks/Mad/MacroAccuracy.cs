namespace Mnemo.Tasks.Mad;

/// <summary>
/// MAD's metric (docs/tasks.md#mad): torchmetrics' MulticlassAccuracy with its default average="macro", accumulated
/// over a whole test set. Per class c it counts tp (label c, predicted c), fn (label c, predicted other) and fp
/// (predicted c, label other); the score is the mean over classes of recall tp/(tp + fn), where a class seen neither
/// as a label nor as a prediction (tp + fp + fn = 0) is left out, and a class only ever predicted scores 0 (as
/// torchmetrics ≥ 1.0 does). So a rare class weighs as much as a frequent one, unlike token accuracy.
/// </summary>
public sealed class MacroAccuracy(int numClasses)
{
    readonly long[] _tp = new long[numClasses], _fp = new long[numClasses], _fn = new long[numClasses];

    public int NumClasses => _tp.Length;

    /// <summary>Adds one scored position. A prediction outside the task's classes (a model vocabulary wider than the
    /// task's) is a miss of the label's class and a false positive of no class.</summary>
    public void Add(long label, long predicted)
    {
        if (label == predicted) _tp[label]++;
        else
        {
            _fn[label]++;
            if (predicted >= 0 && predicted < NumClasses) _fp[predicted]++;
        }
    }

    public void Add(ReadOnlySpan<long> labels, ReadOnlySpan<long> predicted)
    {
        for (int i = 0; i < labels.Length; i++) Add(labels[i], predicted[i]);
    }

    public void Add(MacroAccuracy other)
    {
        for (int c = 0; c < NumClasses; c++)
        {
            _tp[c] += other._tp[c];
            _fp[c] += other._fp[c];
            _fn[c] += other._fn[c];
        }
    }

    /// <summary>The macro average; NaN when nothing was added.</summary>
    public double Value
    {
        get
        {
            double sum = 0;
            int classes = 0;
            for (int c = 0; c < NumClasses; c++)
            {
                if (_tp[c] + _fp[c] + _fn[c] == 0) continue;
                classes++;
                long support = _tp[c] + _fn[c];
                sum += support == 0 ? 0 : (double)_tp[c] / support;
            }
            return classes == 0 ? double.NaN : sum / classes;
        }
    }
}

/// <summary>MAD's macro accuracy over a slice as an <see cref="ISliceMetric"/>: "macro_accuracy".</summary>
public sealed class MacroAccuracyMetric(int numClasses) : ISliceMetric
{
    public const string Name = "macro_accuracy";
    readonly MacroAccuracy _acc = new(numClasses);

    public void AddExample(int example, ReadOnlySpan<long> labels, ReadOnlySpan<long> predicted, ReadOnlySpan<float> logProbs)
    {
        for (int t = 0; t < labels.Length; t++)
            if (labels[t] != TaskBatch.Ignore) _acc.Add(labels[t], predicted[t]);
    }

    public IEnumerable<KeyValuePair<string, double>> Values() => [new(Name, _acc.Value)];
}
