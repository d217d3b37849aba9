using Mnemo.Reporting;

namespace Mnemo.Experiments;

/// <summary>One coordinate of a test clip's pose per frame, the true dance against each generator's, with the music's
/// beats as vertical lines (the motion should turn or pause on them).</summary>
public static class DancePlot
{
    public static void Save(DanceExample example, int fps, string path)
    {
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Palettes.Category10();
        foreach (int beat in example.Beats)
        {
            var line = plot.Add.VerticalLine(beat / (double)fps);
            line.Color = ScottPlot.Colors.Gray.WithAlpha(0.5);
            line.LinePattern = ScottPlot.LinePattern.Dotted;
        }
        for (int i = 0; i < example.Tracks.Count; i++)
        {
            var (name, values) = example.Tracks[i];
            var line = Plots.Line(plot, [.. values.Select((_, t) => t / (double)fps)], values, colors.GetColor(i), name, markerSize: 0);
            line.LineWidth = i == 0 ? 3 : 1.5f;
        }
        Plots.Save(plot, $"A generated {example.Style} at {example.Bpm:F0} BPM: the first joint's x against time (dotted: the beats)",
            "seconds", "x of joint 1", path, 1000, 450, percent: false);
    }
}
