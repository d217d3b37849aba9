using Mnemo.Runtime;

namespace Mnemo.Tasks.Verbatim;

/// <summary>
/// Verbatim repetition's test metrics for one slice (docs/tasks.md#verbatim-repetition): the median repeat surprisal per condition
/// ("repeat_surprisal_repeat", "_permute", "_novel") and next-token accuracy over list 2 without its first noun
/// ("list2_accuracy", mean over examples).
/// </summary>
public sealed class VerbatimMetric(Verbatim.Layout layout) : ISliceMetric
{
    public const string List2Accuracy = "list2_accuracy";
    public const string SurprisalPrefix = "repeat_surprisal_";

    readonly Dictionary<ListCondition, List<double>> _ratios = Enum.GetValues<ListCondition>()
        .ToDictionary(c => c, _ => new List<double>());
    double _list2Correct;
    int _examples;

    public bool NeedsLogProbs => true;

    public void AddExample(int example, ReadOnlySpan<long> labels, ReadOnlySpan<long> predicted, ReadOnlySpan<float> logProbs)
    {
        int n = layout.ListLen, list1 = layout.List1 - 1, list2 = layout.List2 - 1;    // positions predicting the lists
        _ratios[Verbatim.ConditionOf(example)].Add(RepeatSurprisal.Of(logProbs.Slice(list1, n), logProbs.Slice(list2, n)));
        int correct = 0;
        for (int j = 1; j < n; j++) if (predicted[list2 + j] == labels[list2 + j]) correct++;
        _list2Correct += (double)correct / (n - 1);
        _examples++;
    }

    public IEnumerable<KeyValuePair<string, double>> Values() =>
    [
        new(List2Accuracy, _examples == 0 ? double.NaN : _list2Correct / _examples),
        .. _ratios.Select(r => new KeyValuePair<string, double>(SurprisalPrefix + r.Key.ToString().ToLowerInvariant(),
            Statistics.Median(r.Value))),
    ];
}
