using Mnemo.Experiments;
using Mnemo.IO;

namespace Mnemo.Tests.Experiments;

/// <summary>The repeated-data study: the schedule repeats exactly the subset it names, as often as asked, and nothing else;
/// a tiny grid runs end to end with the baseline once and repeats itself from the same seed.</summary>
[Collection(TorchCollection.Name)]
public class RepeatedDataTests
{
    [Theory]
    [InlineData(0.1, 16, 1000)]
    [InlineData(0.5, 1, 1000)]
    [InlineData(0.25, 1000, 640)]
    [InlineData(0.0, 64, 300)]
    public void The_schedule_repeats_its_subset_r_times_and_reads_every_other_window_once(double fraction, int repeats, int windows)
    {
        var (slots, subset) = RepeatedData.Schedule(5000, windows, fraction, repeats, 9);
        Assert.Equal(windows, slots.Length);
        int repeated = (int)Math.Round(fraction * windows);
        Assert.Equal(repeated == 0 ? 0 : Math.Max(1, (int)Math.Round((double)repeated / repeats)), subset.Length);
        var counts = slots.GroupBy(s => s).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(repeated, subset.Sum(t => counts[t]));
        foreach (int t in subset)                                                        // r times each, give or take one
            Assert.InRange(counts[t], repeated / subset.Length, (repeated + subset.Length - 1) / subset.Length);
        Assert.All(counts.Where(kv => !subset.Contains(kv.Key)), kv => Assert.Equal(1, kv.Value));
        Assert.Equal(slots, RepeatedData.Schedule(5000, windows, fraction, repeats, 9).Slots);
    }

    [Fact]
    public void A_budget_larger_than_the_text_is_refused_with_the_field_to_change()
    {
        var e = Assert.Throws<MnemoException>(() => RepeatedData.Schedule(100, 200, 0.1, 4, 1));
        Assert.Contains("training.steps", e.Message);
        Assert.Contains("repeats", Assert.Throws<ConfigException>(() => RepeatedDataConfig.Load(null, ["repeats=[0]"])).Message);
    }

    [Fact]
    public void A_tiny_grid_runs_with_the_baseline_once_and_the_same_seed_repeats_it()
    {
        var c = RepeatedDataConfig.Load(null, ["corpus=generated", "seq_len=32", "model.d_model=16", "model.num_heads=2",
            "training.steps=6", "training.batch_size=4", "training.warmup_steps=1", "repeats=[1,4]", "fractions=[0.5]",
            "eval_windows=4", "probe_rows=4", "probe_span=8"]);
        var runs = RepeatedData.Run(c, [3, 3]);
        Assert.Equal(4, runs.Count);                                                     // per seed: the baseline and f 0.5 × r 4
        Assert.Equal([0, 0.5, 0, 0.5], runs.Select(r => r.Fraction));
        Assert.Equal(3, runs[1].SubsetWindows);                                          // 12 repeated windows / 4
        Assert.Null(runs[0].Subset);
        Assert.All(runs, r => Assert.True(double.IsFinite(r.HeldOut) && r.HeldOut > 0 && double.IsFinite(r.CopyText)));
        Assert.Equal(runs[0] with { Seconds = 0 }, runs[2] with { Seconds = 0 });
        Assert.Equal(runs[1] with { Seconds = 0 }, runs[3] with { Seconds = 0 });
    }
}
