namespace Mnemo.Tasks;

/// <summary>
/// A metric a task asks for beyond the per-position and exact-match accuracy (see
/// <see cref="ITask.SliceMetrics"/>): one instance per test slice, fed every example of it by the evaluator and read
/// once at the end into the slice's metrics.
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
