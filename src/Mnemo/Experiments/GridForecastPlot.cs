using System.Globalization;

namespace Mnemo.Experiments;

/// <summary>One test sequence as a strip of frames (PNG): the input frames, the true future, and each model's predicted
/// probabilities for it, one row each.</summary>
public static class GridForecastPlot
{
    public static void Frames(GridForecastConfig c, IReadOnlyList<GridForecastRun> runs, string path)
    {
        var sequence = GridForecast.FirstTestSequence(c);
        int s = c.Size, frameSize = s * s, columns = Math.Max(c.InputFrames, c.OutputFrames);
        var rows = new List<(string Label, float[] Frames, int Offset, int Count)>
        {
            ("input", sequence, 0, c.InputFrames),
            ("truth", sequence, c.InputFrames, c.OutputFrames),
        };
        rows.AddRange(runs.GroupBy(r => r.Model).Select(g => ($"{g.Key}", g.First().Example, 0, c.OutputFrames)));
        var grid = new double[rows.Count * (s + 1), columns * (s + 1)];
        for (int y = 0; y < grid.GetLength(0); y++)
            for (int x = 0; x < grid.GetLength(1); x++) grid[y, x] = 0.3;                 // a grey line between frames
        for (int r = 0; r < rows.Count; r++)
            for (int f = 0; f < rows[r].Count; f++)
                for (int y = 0; y < s; y++)
                    for (int x = 0; x < s; x++)
                        grid[r * (s + 1) + y, f * (s + 1) + x] = rows[r].Frames[(rows[r].Offset + f) * frameSize + y * s + x];
        var plot = new ScottPlot.Plot();
        var map = plot.Add.Heatmap(grid);
        map.Colormap = new ScottPlot.Colormaps.Grayscale();
        map.ManualRange = new ScottPlot.Range(0, 1);
        plot.Axes.Left.SetTicks([.. Enumerable.Range(0, rows.Count).Select(r => (double)((rows.Count - 1 - r) * (s + 1) + s / 2))],
            [.. rows.Select(r => r.Label)]);
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, columns).Select(f => (double)(f * (s + 1) + s / 2))],
            [.. Enumerable.Range(1, columns).Select(f => f.ToString(CultureInfo.InvariantCulture))]);
        plot.Title("A test sequence: the input frames, the true future and each model's predicted probabilities");
        plot.XLabel("frame");
        plot.SavePng(path, 160 + 22 * columns * (s + 1) / 4, 120 + 22 * rows.Count * (s + 1) / 4);
    }
}
