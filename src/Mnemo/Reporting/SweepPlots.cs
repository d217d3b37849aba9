using System.Globalization;
using Mnemo.Runtime;
using Mnemo.Sweeps;

namespace Mnemo.Reporting;

/// <summary>The PNG plots of <see cref="SweepReport"/> (ScottPlot).</summary>
static class SweepPlots
{
    static readonly ScottPlot.Palettes.Category10 Palette = new();

    /// <summary>Score against context length, one line per cell; slices of one length (e.g. depth bins) pooled.</summary>
    public static void Length(IReadOnlyList<SweepCell> cells, string path)
    {
        var plot = new ScottPlot.Plot();
        var lengths = cells.SelectMany(c => c.Slices.Select(s => s.SeqLen)).Distinct().Order().ToArray();
        for (int i = 0; i < cells.Count; i++)
        {
            var c = cells[i];
            var points = c.Slices.GroupBy(s => s.SeqLen).OrderBy(g => g.Key)
                .Select(g => (X: Math.Log2(g.Key), Y: 100 * g.Sum(s => s.Headline(c.Headline) * s.Examples) / g.Sum(s => s.Examples)))
                .ToArray();
            Plots.Line(plot, points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray(), Palette.GetColor(i),
                $"{c.CellId} (lr {c.BestLr:G2})");
        }
        plot.Axes.Bottom.SetTicks(lengths.Select(l => Math.Log2(l)).ToArray(),
            lengths.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToArray());
        Plots.Save(plot, "Recall against context length", "context length (tokens, log scale)", "score (%)", path, 1000, 600);
    }

    /// <summary>
    /// Validation accuracy against step, one colour per seed group: the median over its seeds (line) and the range
    /// (band). Curves are read at every step any run evaluated; a run holds its last value after it stops (the
    /// target reached) and 0 after it diverged.
    /// </summary>
    public static void SeedCurves(IReadOnlyList<SeedSummary> groups,
        IReadOnlyDictionary<string, List<List<(double Step, double Accuracy)>>> curves, string path)
    {
        var plot = new ScottPlot.Plot();
        for (int i = 0; i < groups.Count; i++)
        {
            // Curves are listed in the order of the group's runs.
            var runs = groups[i].Runs.Zip(curves[groups[i].GroupId], (r, c) => (Curve: c, r.Diverged)).Where(r => r.Curve.Count > 0)
                .ToList();
            if (runs.Count == 0) continue;
            var steps = runs.SelectMany(r => r.Curve.Select(p => p.Step)).Distinct().Order().ToArray();
            static double At(List<(double Step, double Accuracy)> run, double step, bool diverged) =>
                run[0].Step > step || (step > run[^1].Step && diverged) ? 0 : 100 * run.Last(p => p.Step <= step).Accuracy;
            var values = steps.Select(s => runs.Select(r => At(r.Curve, s, r.Diverged)).ToArray()).ToArray();
            var color = Palette.GetColor(i);
            var band = plot.Add.FillY(steps, values.Select(v => v.Min()).ToArray(), values.Select(v => v.Max()).ToArray());
            band.FillColor = color.WithAlpha(0.15);
            band.LineColor = color.WithAlpha(0);
            Plots.Line(plot, steps, values.Select(v => Statistics.Median(v)).ToArray(), color,
                $"{groups[i].GroupId} (lr {groups[i].BestLr:G2}, {runs.Count} seeds)", markerSize: 3);
        }
        Plots.Save(plot, "Validation accuracy over training: median and range over seeds", "step", "accuracy (%)", path, 1100, 650);
    }

    /// <summary>Score against state size per layer (log scale), one line per value of the series axis.</summary>
    public static void StateSize(IReadOnlyList<SweepCell> cells, string? seriesAxis, string path)
    {
        var plot = new ScottPlot.Plot();
        var groups = cells.GroupBy(c => seriesAxis is null ? c.Mixer : c[seriesAxis]).ToList();
        for (int i = 0; i < groups.Count; i++)
        {
            var points = groups[i].GroupBy(c => c.StateFloatsPerLayer).OrderBy(g => g.Key)
                .Select(g => (X: Math.Log2(g.Key), Y: 100 * g.Max(c => c.Score))).ToArray();
            Plots.Line(plot, points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray(), Palette.GetColor(i), groups[i].Key,
                markerSize: 8);
        }
        var sizes = cells.Select(c => c.StateFloatsPerLayer).Distinct().Order().ToArray();
        plot.Axes.Bottom.SetTicks(sizes.Select(s => Math.Log2(s)).ToArray(),
            sizes.Select(s => s.ToString("N0", CultureInfo.InvariantCulture)).ToArray());
        Plots.Save(plot, "Recall against state size (best learning rate)", "state floats per layer (log scale)", "score (%)", path, 1000,
            600);
    }

    /// <summary>Needle depth (rows, top = start of the context) × context length (columns), colour = score.</summary>
    public static void DepthHeatmap(SweepCell cell, string path)
    {
        var depths = cell.Slices.Where(s => s.Depth is not null).Select(s => s.Depth!.Value).Distinct().Order().ToArray();
        var lengths = cell.Slices.Where(s => s.Depth is not null).Select(s => s.SeqLen).Distinct().Order().ToArray();
        var grid = new double[depths.Length, lengths.Length];
        for (int r = 0; r < depths.Length; r++)
            for (int c = 0; c < lengths.Length; c++)
            {
                var s = cell.Slices.FirstOrDefault(x => x.Depth == depths[r] && x.SeqLen == lengths[c]);
                grid[r, c] = s is null ? double.NaN : 100 * s.Headline(cell.Headline);
            }
        var plot = new ScottPlot.Plot();
        var map = plot.Add.Heatmap(grid);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        map.ManualRange = new ScottPlot.Range(0, 100);
        plot.Add.ColorBar(map);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, lengths.Length).Select(i => (double)i).ToArray(),
            lengths.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.Left.SetTicks(Enumerable.Range(0, depths.Length).Select(i => (double)(depths.Length - 1 - i)).ToArray(),
            depths.Select(d => d.ToString("P0", CultureInfo.InvariantCulture)).ToArray());
        plot.Title($"{cell.CellId}: score by needle depth and length");
        plot.XLabel("context length (tokens)");
        plot.YLabel("needle depth");
        plot.SavePng(path, 800, 600);
    }

    /// <summary>Training loss against step, one curve per cell.</summary>
    public static void Loss(IReadOnlyDictionary<string, List<(double Step, double Loss)>> curves, string path)
    {
        var plot = new ScottPlot.Plot();
        int i = 0;
        foreach (var (name, curve) in curves)
        {
            if (curve.Count == 0) { i++; continue; }
            var line = plot.Add.Scatter(curve.Select(p => p.Step).ToArray(), curve.Select(p => p.Loss).ToArray());
            line.Color = Palette.GetColor(i++);
            line.MarkerSize = 0;
            line.LegendText = name;
        }
        Plots.Save(plot, "Training loss of the kept runs", "step", "cross-entropy on the scored positions", path, 1000, 600,
            percent: false);
    }
}
