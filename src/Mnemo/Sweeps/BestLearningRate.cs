namespace Mnemo.Sweeps;

/// <summary>
/// The one rule every experiment reports a cell by (Zoology: the max over learning rates, chosen on the validation
/// set): the highest validation score the task reports (exact match where that is the score, token accuracy
/// otherwise), token accuracy breaking ties, then the smaller learning rate, so the pick never depends on the order
/// the runs finished in. A NaN score sorts below every number. The sweep's results (<see cref="SweepResults"/>)
/// choose through it, and so every experiment run as a sweep (the demo, length extrapolation, state collapse).
/// </summary>
public static class BestLearningRate
{
    /// <summary>The best of a cell's runs; <paramref name="headline"/> is the task's reported score ("accuracy" or
    /// "exact_match"), <paramref name="exactMatch"/> and <paramref name="accuracy"/> a run's validation scores.</summary>
    public static T Pick<T>(IEnumerable<T> runs, string headline, Func<T, double> lr, Func<T, double> accuracy,
        Func<T, double> exactMatch)
    {
        var list = runs.ToList();
        if (list.Count == 0) throw new ArgumentException("no run to choose from", nameof(runs));
        return list.OrderByDescending(r => headline == "exact_match" ? exactMatch(r) : accuracy(r))
            .ThenByDescending(accuracy)
            .ThenBy(lr).First();
    }
}
