using Mnemo.Sweeps;

namespace Mnemo.Tests.Sweeps;

public class BestLearningRateTests
{
    static double Pick(string headline, params (double Lr, double Acc, double Exact)[] runs) =>
        BestLearningRate.Pick(runs, headline, r => r.Lr, r => r.Acc, r => r.Exact).Lr;

    [Fact]
    public void Accuracy_headline_picks_the_best_accuracy()
    {
        Assert.Equal(3e-3, Pick("accuracy", (1e-3, 0.5, 0.9), (3e-3, 0.8, 0.1), (1e-2, 0.7, 0.2)));
    }

    [Fact]
    public void Exact_match_headline_picks_by_exact_match_then_accuracy()
    {
        Assert.Equal(1e-3, Pick("exact_match", (1e-3, 0.5, 0.9), (3e-3, 0.8, 0.1)));
        Assert.Equal(3e-3, Pick("exact_match", (1e-3, 0.5, 0.4), (3e-3, 0.8, 0.4)));
    }

    [Fact]
    public void A_tie_goes_to_the_smaller_rate_whatever_the_order()
    {
        Assert.Equal(1e-3, Pick("accuracy", (1e-2, 0.8, 0.1), (1e-3, 0.8, 0.1)));
        Assert.Equal(1e-3, Pick("accuracy", (1e-3, 0.8, 0.1), (1e-2, 0.8, 0.1)));
    }

    [Fact]
    public void A_NaN_score_never_wins()
    {
        Assert.Equal(1e-2, Pick("accuracy", (1e-3, double.NaN, 0), (1e-2, 0.1, 0)));
        Assert.Equal(1e-2, Pick("exact_match", (1e-3, 0.9, double.NaN), (1e-2, 0.1, 0)));
    }

    [Fact]
    public void No_run_is_an_error()
    {
        Assert.Throws<ArgumentException>(() => Pick("accuracy"));
    }
}
