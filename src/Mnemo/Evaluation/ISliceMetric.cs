namespace Mnemo.Evaluation;

/// <summary>
/// A metric a task asks for beyond the per-position and exact-match accuracy (see
/// <see cref="Mnemo.Tasks.ITask.SliceMetrics"/>): one instance per test slice, fed every example of it and read
/// once at the end into <see cref="SliceAccuracy.Metrics"/>.
/// </summary>
public interface ISliceMetric
{
    /// <summary>Whether <see cref="AddExample"/> needs log p(label) (costs a log-softmax over the scored positions).</summary>
    bool NeedsLogProbs => false;

    /// <summary>
    /// One example (row <paramref name="example"/> of the slice), all spans of length L: labels (Ignore where
    /// unscored), the model's argmax at scored positions (Ignore elsewhere), and the natural log-probability of the
    /// label at scored positions (NaN elsewhere, and everywhere unless <see cref="NeedsLogProbs"/>).
    /// </summary>
    void AddExample(int example, ReadOnlySpan<long> labels, ReadOnlySpan<long> predicted, ReadOnlySpan<float> logProbs);

    /// <summary>Named values, e.g. ("macro_accuracy", 0.93).</summary>
    IEnumerable<KeyValuePair<string, double>> Values();
}

/// <summary>MAD's macro accuracy over a slice as an <see cref="ISliceMetric"/>: "macro_accuracy".</summary>
public sealed class MacroAccuracyMetric(int numClasses) : ISliceMetric
{
    public const string Name = "macro_accuracy";
    readonly MacroAccuracy _acc = new(numClasses);

    public void AddExample(int example, ReadOnlySpan<long> labels, ReadOnlySpan<long> predicted, ReadOnlySpan<float> logProbs)
    {
        for (int t = 0; t < labels.Length; t++)
            if (labels[t] != Mnemo.Tasks.TaskBatch.Ignore) _acc.Add(labels[t], predicted[t]);
    }

    public IEnumerable<KeyValuePair<string, double>> Values() => [new(Name, _acc.Value)];
}
