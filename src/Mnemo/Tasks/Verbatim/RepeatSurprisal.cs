namespace Mnemo.Tasks.Verbatim;

/// <summary>
/// Armeni et al.'s repeat surprisal (docs/tasks.md#verbatim-repetition): with surprisal −log p (nats) per token, x1 and x2 the mean
/// surprisal over list 1 and list 2, each without its first noun, repeat surprisal = 100 · x2 / x1. Below 100 means
/// the second list was easier to predict: the model retrieved it from context. Summarised by the median over
/// vignettes.
/// </summary>
public static class RepeatSurprisal
{
    /// <summary>100 · x2/x1 from the label log-probabilities of list 1 and list 2 (first nouns included in the
    /// spans; they are dropped here).</summary>
    public static double Of(ReadOnlySpan<float> list1LogProbs, ReadOnlySpan<float> list2LogProbs) =>
        100 * MeanSurprisal(list2LogProbs[1..]) / MeanSurprisal(list1LogProbs[1..]);

    static double MeanSurprisal(ReadOnlySpan<float> logProbs)
    {
        double sum = 0;
        foreach (float lp in logProbs) sum -= lp;
        return sum / logProbs.Length;
    }
}
