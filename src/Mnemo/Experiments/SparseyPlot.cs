using Mnemo.Reporting;
using Mnemo.Runtime;

namespace Mnemo.Experiments;

/// <summary>Exact replay of each memory against one sweep of <see cref="SparseyCapacity"/> (median over trials).</summary>
public static class SparseyPlot
{
    public static void Save(IReadOnlyList<SparseyPoint> points, string sweep, string xLabel, string path, bool logX)
    {
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Palettes.Category10();
        var memories = points.Where(p => p.Sweep == sweep).GroupBy(p => p.Memory).ToArray();
        for (int i = 0; i < memories.Length; i++)
        {
            var series = memories[i].OrderBy(p => p.X).ToArray();
            double[] xs = [.. series.Select(p => logX ? Math.Log2(p.X) : p.X)];
            Plots.Line(plot, xs, [.. series.Select(p => 100 * Statistics.Median(p.Exact))], colors.GetColor(i),
                $"{memories[i].Key} ({series[0].Bits / 8192.0:F0} KiB)");
        }
        if (logX)
        {
            var ticks = memories[0].Select(p => p.X).Distinct().Order().ToArray();
            plot.Axes.Bottom.SetTicks([.. ticks.Select(Math.Log2)], [.. ticks.Select(t => $"{t:F0}")]);
        }
        Plots.Save(plot, "Sequence replay from the first item (exact items, median over trials)", xLabel, "items replayed exactly (%)",
            path, 800, 500);
    }
}
