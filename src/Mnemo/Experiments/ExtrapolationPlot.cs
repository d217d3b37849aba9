using Mnemo.Reporting;

namespace Mnemo.Experiments;

/// <summary>Accuracy against evaluation length: one colour per model, solid for MQAR, dashed for passkey.</summary>
static class ExtrapolationPlot
{
    public static void Write(IReadOnlyList<ExtrapolationCell> cells, int trainLength, string path)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var models = cells.Select(c => c.Model).Distinct().ToList();
        var tasks = cells.Select(c => c.Task).Distinct().ToList();
        foreach (var c in cells)
        {
            var line = Plots.Line(plot, c.Lengths.Select(l => (double)l.SeqLen).ToArray(),
                c.Lengths.Select(l => 100 * Extrapolation.Headline(c.Task, l)).ToArray(),
                palette.GetColor(models.IndexOf(c.Model)), $"{c.Model} · {c.Task} (lr {c.BestLr:G2})", markerSize: 7);
            line.LinePattern = tasks.IndexOf(c.Task) == 0 ? ScottPlot.LinePattern.Solid : ScottPlot.LinePattern.Dashed;
            line.MarkerShape = tasks.IndexOf(c.Task) == 0 ? ScottPlot.MarkerShape.FilledCircle : ScottPlot.MarkerShape.OpenSquare;
        }
        var train = plot.Add.VerticalLine(trainLength);
        train.LinePattern = ScottPlot.LinePattern.Dotted;
        train.Color = ScottPlot.Colors.Gray;
        train.LegendText = $"training length {trainLength}";
        var lengths = cells.SelectMany(c => c.Lengths.Select(l => l.SeqLen)).Distinct().Order().ToArray();
        plot.Axes.Bottom.SetTicks(lengths.Select(l => (double)l).ToArray(), lengths.Select(l => l.ToString()).ToArray());
        Plots.Save(plot, "Recall beyond the training length (MQAR: per-query accuracy; passkey: exact match)", "evaluation length (tokens)",
            "accuracy (%)", path, 900, 550);
    }
}
