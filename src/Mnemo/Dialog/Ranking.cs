using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>Visual Dialog's retrieval metrics over the human answer's ranks (docs/dialog.md#the-metrics).</summary>
/// <param name="Mrr">mean of 1 / rank</param>
/// <param name="RecallAt1">share of questions whose human answer ranks first</param>
/// <param name="MeanRank">mean rank (1 best, N worst)</param>
public sealed record RankMetrics(int Questions, double Mrr, double RecallAt1, double RecallAt5, double RecallAt10, double MeanRank)
{
    public static RankMetrics Of(IReadOnlyCollection<int> ranks) => ranks.Count == 0
        ? throw new ArgumentException("no ranks", nameof(ranks))
        : new(ranks.Count, ranks.Average(r => 1.0 / r), ranks.Average(r => r <= 1 ? 1.0 : 0), ranks.Average(r => r <= 5 ? 1.0 : 0),
            ranks.Average(r => r <= 10 ? 1.0 : 0), ranks.Average(r => (double)r));
}

public static class Ranking
{
    /// <summary>
    /// The human answer's rank among each question's candidates: 1 + the candidates scored at least as high as it (other
    /// than itself). Ties count against it, so a model that scores every candidate alike ranks the answer last, not first.
    /// </summary>
    /// <param name="scores">[Q, N]</param>
    /// <param name="truth">[Q] int64: where the human answer is</param>
    /// <returns>[Q] ranks, 1 … N</returns>
    public static int[] Ranks(Tensor scores, Tensor truth)
    {
        using var scope = NewDisposeScope();
        var own = scores.gather(1, truth.unsqueeze(1));                                     // [Q, 1]
        var rivals = scores.ge(own).sum(1, type: ScalarType.Int64);                         // counts itself once
        return [.. rivals.data<long>().Select(r => (int)r)];
    }
}
