using Mnemo.Evaluation.Mitigations;
using Mnemo.Sweeps;

namespace Mnemo.Reporting;

/// <summary>
/// The plots of a sweep's evaluation variants (e.g. the state-collapse mitigations): state norm against position,
/// and score against length per variant.
/// </summary>
static class VariantPlots
{
    /// <summary>‖S_t‖_F (mean over examples of the largest head) against position at the longest length: one colour
    /// per (cell, layer), solid as first recorded (as trained), dashed / dotted under the other variants.</summary>
    public static void Norms(IReadOnlyList<(string Label, IReadOnlyList<StateNormTrace> Traces)> cells, int trainLength, string path)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var patterns = new[]
        {
            ScottPlot.LinePattern.Solid,
            ScottPlot.LinePattern.Dashed,
            ScottPlot.LinePattern.Dotted,
            ScottPlot.LinePattern.DenselyDashed,
        };
        int colour = 0;
        foreach (var (label, traces) in cells)
            foreach (var layer in traces.Select(n => n.Layer).Distinct())
            {
                var variants = traces.Where(n => n.Layer == layer).ToList();
                for (int i = 0; i < variants.Count; i++)
                {
                    var n = variants[i];
                    var line = plot.Add.Scatter(Enumerable.Range(1, n.Norms.Length).Select(t => (double)t).ToArray(), n.Norms);
                    line.Color = palette.GetColor(colour);
                    line.LinePattern = patterns[i % patterns.Length];
                    line.MarkerSize = 0;
                    line.LineWidth = i == 0 ? 2 : 1.5f;
                    line.LegendText = $"{label} · layer {layer} · {n.Variant}";
                }
                colour++;
            }
        TrainingLine(plot, trainLength, trainLength);
        plot.Title("State norm against position (mean over examples of the largest head's ‖S_t‖_F)");
        plot.XLabel("position t");
        plot.YLabel("‖S_t‖_F");
        plot.ShowLegend(ScottPlot.Edge.Right);
        plot.SavePng(path, 1200, 600);
    }

    /// <summary>Score against evaluation length: one colour per variant, one line pattern per (cell, task); a cell
    /// is named by <paramref name="label"/>. Slices of one length (e.g. depth bins) are pooled.</summary>
    public static void Accuracy(IReadOnlyList<SweepCell> cells, Func<SweepCell, string> label, int trainLength, string path)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var models = cells.Select(c => $"{label(c)} · {c.Task}").Distinct().ToList();
        var variants = cells.SelectMany(c => c.Variants.Select(s => s.Name)).Distinct().ToList();
        var patterns = new[] { ScottPlot.LinePattern.Solid, ScottPlot.LinePattern.Dashed, ScottPlot.LinePattern.Dotted };
        foreach (var c in cells)
            foreach (var s in c.Variants)
            {
                var points = s.Slices.GroupBy(x => x.SeqLen).OrderBy(g => g.Key).Select(g => (X: Math.Log2(g.Key),
                    Y: 100 * (g.Count() == 1 ? g.First().Headline(c.Headline)
                        : g.Sum(x => x.Headline(c.Headline) * x.Examples) / g.Sum(x => x.Examples)))).ToArray();
                var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
                line.Color = palette.GetColor(variants.IndexOf(s.Name));
                line.LinePattern = patterns[models.IndexOf($"{label(c)} · {c.Task}") % patterns.Length];
                line.LineWidth = 2;
                line.MarkerSize = 6;
                line.LegendText = $"{label(c)} · {s.Name}";
            }
        TrainingLine(plot, Math.Log2(trainLength), trainLength);
        var lengths = cells.SelectMany(c => c.Variants.SelectMany(s => s.Slices.Select(l => l.SeqLen))).Distinct().Order().ToArray();
        plot.Axes.Bottom.SetTicks(lengths.Select(l => Math.Log2(l)).ToArray(), lengths.Select(l => l.ToString()).ToArray());
        plot.Axes.SetLimitsY(0, 105);
        plot.Title("Recall beyond the training length, per mitigation (passkey: exact match; MQAR: per-query accuracy)");
        plot.XLabel("evaluation length (tokens, log scale)");
        plot.YLabel("accuracy (%)");
        plot.ShowLegend(ScottPlot.Edge.Right);
        plot.SavePng(path, 1200, 600);
    }

    static void TrainingLine(ScottPlot.Plot plot, double x, int trainLength)
    {
        var train = plot.Add.VerticalLine(x);
        train.LinePattern = ScottPlot.LinePattern.Dotted;
        train.Color = ScottPlot.Colors.Gray;
        train.LegendText = $"training length {trainLength}";
    }
}
