using Mnemo.Reporting;
using Mnemo.Runtime;

namespace Mnemo.Experiments;

/// <summary>A measure of <see cref="FewShotMemory"/> results against exposures or against interference updates: one colour
/// per mixer, one line pattern per material, medians over seeds.</summary>
public static class FewShotMemoryPlot
{
    /// <param name="retention">against interference updates (log scale; 0 drawn at 0.5) of the retention runs, else against
    /// exposures (0 = before the study) straight after the study</param>
    public static void Save(IReadOnlyList<FewShotResult> results, bool retention, Func<FewShotResult, double> measure, string what,
        bool percent, string path)
    {
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Palettes.Category10();
        ScottPlot.LinePattern[] patterns = [ScottPlot.LinePattern.Solid, ScottPlot.LinePattern.Dashed, ScottPlot.LinePattern.Dotted];
        string[] mixers = [.. results.Select(r => r.Mixer).Distinct()];
        var materials = results.Select(r => r.Material).Distinct().ToArray();
        int retained = results.Where(r => r.Delay > 0).Select(r => r.Exposures).DefaultIfEmpty(0).First();
        var shown = retention ? results.Where(r => r.Exposures == retained).ToArray() : results.Where(r => r.Delay == 0).ToArray();
        double X(FewShotResult r) => retention ? Math.Log2(Math.Max(r.Delay, 0.5)) : r.Exposures;
        foreach (var g in shown.GroupBy(r => (r.Mixer, r.Material)))
        {
            var points = g.GroupBy(X).Select(p => (X: p.Key, Y: Statistics.Median(p.Select(measure)))).OrderBy(p => p.X).ToArray();
            var line = Plots.Line(plot, [.. points.Select(p => p.X)], [.. points.Select(p => percent ? 100 * p.Y : p.Y)],
                colors.GetColor(Array.IndexOf(mixers, g.Key.Mixer)), $"{g.Key.Mixer}, {Names.Of(g.Key.Material)}");
            line.LinePattern = patterns[Array.IndexOf(materials, g.Key.Material) % patterns.Length];
        }
        if (retention)
        {
            var ticks = shown.Select(r => r.Delay).Distinct().Order().ToArray();
            plot.Axes.Bottom.SetTicks([.. ticks.Select(d => Math.Log2(Math.Max(d, 0.5)))], [.. ticks.Select(d => $"{d}")]);
        }
        else if (!percent) plot.Axes.SetLimitsY(0, 1.05);
        string title = retention
            ? $"Retention after {retained} exposures: {what} (median over seeds)"
            : $"Few-shot memory: {what} against exposures (median over seeds)";
        Plots.Save(plot, title, retention ? "updates on new text after the study (log scale)" : "exposures to the study set",
            what, path, 900, 550, percent);
    }
}
