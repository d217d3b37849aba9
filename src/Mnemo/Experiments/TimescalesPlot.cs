using Mnemo.Reporting;

namespace Mnemo.Experiments;

/// <summary>The learned timescales of <see cref="Timescales"/> runs: each run's τ sorted, one line per run.</summary>
public static class TimescalesPlot
{
    public static void Tau(IReadOnlyList<TimescalesRun> runs, string path)
    {
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Palettes.Category10();
        string[] curricula = [.. runs.Select(r => r.Curriculum).Distinct()];
        foreach (var r in runs)
        {
            var sorted = r.Tau.Select(x => (double)x).OrderDescending().ToArray();
            var line = Plots.Line(plot, [.. Enumerable.Range(1, sorted.Length).Select(i => (double)i)], sorted,
                colors.GetColor(Array.IndexOf(curricula, r.Curriculum)), $"{r.Curriculum} seed {r.Seed} (N = {r.LargestN})", markerSize: 0);
            line.LineWidth = 1.5f;
        }
        plot.Axes.SetLimitsY(1, Math.Max(2, runs.Max(r => r.Tau.Max()) * 1.05));
        Plots.Save(plot, "Learned timescales τ per neuron, largest first", "neuron rank", "τ (steps)", path, 800, 500, percent: false);
    }
}
