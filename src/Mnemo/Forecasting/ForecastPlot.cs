using Mnemo.Reporting;

namespace Mnemo.Forecasting;

/// <summary>The first target column's true prices over the test part against each forecaster's h-step forecasts.</summary>
static class ForecastPlot
{
    /// <param name="results">one per forecaster (a model's first seed), forecasts [origin][h][column] at <paramref name="origins"/></param>
    public static void Write(WalkForward walk, int[] origins, IReadOnlyList<ForecastResult> results, int h, string path)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var target = walk.Targets;
        int first = origins[0];
        var steps = Enumerable.Range(first, target.Length - first).ToArray();
        var truth = Plots.Line(plot, [.. steps.Select(s => (double)s)], [.. steps.Select(s => target.Rows[s][0])],
            ScottPlot.Colors.Black, $"{target.Columns[0]} (truth)", markerSize: 0);
        truth.LineWidth = 2;
        for (int i = 0; i < results.Count; i++)
        {
            var line = Plots.Line(plot, [.. origins.Select(o => (double)(o + h))], [.. results[i].Forecasts.Select(f => f[h - 1][0])],
                palette.GetColor(i), $"{results[i].Name}, {h} step{(h == 1 ? "" : "s")} ahead", markerSize: 0);
            line.LineWidth = 1;
        }
        Plots.Save(plot, $"{target.Name}: {target.Columns[0]} and its forecasts {h} step{(h == 1 ? "" : "s")} ahead (walk-forward)",
            "step", "price", path, 1100, 550, percent: false);
    }
}
