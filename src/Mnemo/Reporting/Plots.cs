namespace Mnemo.Reporting;

/// <summary>What every plot of the reports shares: series styling and the labelled, saved frame.</summary>
static class Plots
{
    /// <summary>A line with markers in a given colour and legend entry.</summary>
    public static ScottPlot.Plottables.Scatter Line(ScottPlot.Plot plot, double[] xs, double[] ys, ScottPlot.Color color, string legend,
        float markerSize = 6)
    {
        var line = plot.Add.Scatter(xs, ys);
        line.Color = color;
        line.LineWidth = 2;
        line.MarkerSize = markerSize;
        line.LegendText = legend;
        return line;
    }

    /// <summary>A bar at the median of <paramref name="values"/> (one per seed) with a black line from their lowest to their
    /// highest.</summary>
    public static void MedianBar(ScottPlot.Plot plot, double x, double[] values, ScottPlot.Color color)
    {
        plot.Add.Bars(new[] { new ScottPlot.Bar { Position = x, Value = Runtime.Statistics.Median(values), FillColor = color } });
        plot.Add.Line(x, values.Min(), x, values.Max()).Color = ScottPlot.Colors.Black;
    }

    /// <summary>Titles and labels the plot, shows the legend, and writes the PNG; a percentage axis spans 0–105.</summary>
    public static void Save(ScottPlot.Plot plot, string title, string xLabel, string yLabel, string path, int width, int height,
        bool percent = true)
    {
        if (percent) plot.Axes.SetLimitsY(0, 105);
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend();
        plot.SavePng(path, width, height);
    }
}
