namespace Mnemo.Experiments;

/// <summary>The state-collapse plots: state norm against position, and accuracy against length per mitigation.</summary>
public static class StateCollapsePlot
{
    /// <summary>‖S_t‖_F (mean over examples of the largest head) against position at the longest length: one colour
    /// per (model, layer), solid as trained, dashed / dotted under the mitigations that run the step form.</summary>
    public static void Norms(IReadOnlyList<CollapseCell> cells, int trainLength, string path)
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
        foreach (var c in cells)
            foreach (var layer in c.Norms.Select(n => n.Layer).Distinct())
            {
                var mitigations = c.Norms.Where(n => n.Layer == layer).ToList();
                for (int i = 0; i < mitigations.Count; i++)
                {
                    var n = mitigations[i];
                    var line = plot.Add.Scatter(Enumerable.Range(1, n.Norms.Length).Select(t => (double)t).ToArray(), n.Norms);
                    line.Color = palette.GetColor(colour);
                    line.LinePattern = patterns[i % patterns.Length];
                    line.MarkerSize = 0;
                    line.LineWidth = i == 0 ? 2 : 1.5f;
                    line.LegendText = $"{c.Model} · layer {layer} · {n.Mitigation}";
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

    /// <summary>Headline accuracy against evaluation length: one colour per mitigation, one line pattern per model.</summary>
    public static void Accuracy(IReadOnlyList<CollapseCell> cells, int trainLength, string path)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var models = cells.Select(c => $"{c.Model} · {c.Task}").Distinct().ToList();
        var mitigations = cells.SelectMany(c => c.Scores.Select(s => s.Mitigation)).Distinct().ToList();
        var patterns = new[] { ScottPlot.LinePattern.Solid, ScottPlot.LinePattern.Dashed, ScottPlot.LinePattern.Dotted };
        foreach (var c in cells)
            foreach (var s in c.Scores)
            {
                var line = plot.Add.Scatter(s.Lengths.Select(l => Math.Log2(l.SeqLen)).ToArray(),
                    s.Lengths.Select(l => 100 * (c.Task == "passkey" ? l.ExactMatch : l.Accuracy)).ToArray());
                line.Color = palette.GetColor(mitigations.IndexOf(s.Mitigation));
                line.LinePattern = patterns[models.IndexOf($"{c.Model} · {c.Task}") % patterns.Length];
                line.LineWidth = 2;
                line.MarkerSize = 6;
                line.LegendText = $"{c.Model} · {s.Mitigation}";
            }
        TrainingLine(plot, Math.Log2(trainLength), trainLength);
        var lengths = cells.SelectMany(c => c.Scores.SelectMany(s => s.Lengths.Select(l => l.SeqLen))).Distinct().Order().ToArray();
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
