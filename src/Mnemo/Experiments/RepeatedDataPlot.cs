using Mnemo.Reporting;
using Mnemo.Runtime;

namespace Mnemo.Experiments;

/// <summary>A measure of <see cref="RepeatedData"/> against the repeat count (log scale), one line per repeated share,
/// the no-repetition baseline as a dashed line; medians over seeds.</summary>
public static class RepeatedDataPlot
{
    public static void Save(IReadOnlyList<RepeatedDataRun> runs, Func<RepeatedDataRun, double> measure, string what, string path)
    {
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Palettes.Category10();
        var baseline = runs.Where(r => r.Fraction == 0).Select(measure).ToArray();
        var shares = runs.Where(r => r.Fraction > 0).GroupBy(r => r.Fraction).OrderBy(g => g.Key).ToArray();
        for (int i = 0; i < shares.Length; i++)
        {
            var points = shares[i].GroupBy(r => r.SubsetWindows)
                .Select(g => (X: g.Average(r => r.Repeats), Y: Statistics.Median(g.Select(measure)))).OrderBy(p => p.X).ToArray();
            Plots.Line(plot, [.. points.Select(p => Math.Log10(p.X))], [.. points.Select(p => p.Y)], colors.GetColor(i),
                $"{100 * shares[i].Key:G3}% of the windows repeated");
        }
        if (baseline.Length > 0)
        {
            var line = plot.Add.HorizontalLine(Statistics.Median(baseline));
            line.LinePattern = ScottPlot.LinePattern.Dashed;
            line.Color = ScottPlot.Colors.Black;
            line.LegendText = "nothing repeated";
        }
        var ticks = runs.Where(r => r.Fraction > 0).Select(r => Math.Round(r.Repeats)).Distinct().Order().ToArray();
        plot.Axes.Bottom.SetTicks([.. ticks.Select(Math.Log10)], [.. ticks.Select(t => $"{t:G4}")]);
        Plots.Save(plot, $"Repeated data at a fixed budget: {what} (median over seeds)", "times each repeated window is seen (log scale)",
            what, path, 900, 500, percent: false);
    }
}
