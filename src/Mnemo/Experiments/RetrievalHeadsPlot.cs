using System.Globalization;

namespace Mnemo.Experiments;

/// <summary>The retrieval scores as a layer × head heatmap (PNG).</summary>
public static class RetrievalHeadsPlot
{
    public static void Save(HeadScores scores, string title, string path)
    {
        int layers = scores.Layers.Length, heads = scores.Score.GetLength(1);
        var grid = new double[layers, heads];
        for (int l = 0; l < layers; l++)
            for (int h = 0; h < heads; h++) grid[l, h] = 100 * scores.Score[l, h];                 // row 0 is drawn at the top
        var plot = new ScottPlot.Plot();
        var map = plot.Add.Heatmap(grid);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        map.ManualRange = new ScottPlot.Range(0, 100);
        plot.Add.ColorBar(map);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, heads).Select(i => (double)i).ToArray(),
            Enumerable.Range(0, heads).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.Left.SetTicks(Enumerable.Range(0, layers).Select(i => (double)(layers - 1 - i)).ToArray(),
            scores.Layers.Select(l => l.ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Title(title);
        plot.XLabel("head");
        plot.YLabel("layer");
        plot.SavePng(path, 200 + 60 * heads, 200 + 60 * layers);
    }
}
