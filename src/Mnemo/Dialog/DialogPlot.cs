using Mnemo.Reporting;

namespace Mnemo.Dialog;

/// <summary>R@1 of each model on the questions that say "it" and on the others: the median over seeds as a bar, the
/// lowest and highest seed as a line through it.</summary>
public static class DialogPlot
{
    public static void Save(IReadOnlyList<DialogRun> runs, string path)
    {
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Palettes.Category10();
        var models = runs.GroupBy(r => (r.Mixer, r.Encoder)).ToArray();
        bool oneMixer = models.Select(m => m.Key.Mixer).Distinct().Count() == 1;
        (string Name, Func<DialogRun, double> Value)[] parts =
            [("questions that say \"it\"", r => r.Referring.RecallAt1), ("the other questions", r => r.Naming.RecallAt1)];
        for (int p = 0; p < parts.Length; p++)
        {
            var color = colors.GetColor(p);
            for (int m = 0; m < models.Length; m++)
            {
                double[] values = [.. models[m].Select(r => 100 * parts[p].Value(r))];
                double x = m * 3 + p;
                Plots.MedianBar(plot, x, values, color);
            }
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = parts[p].Name, FillColor = color });
        }
        plot.Axes.Bottom.SetTicks([.. models.Select((_, m) => m * 3 + 0.5)],
            [.. models.Select(g => oneMixer ? g.Key.Encoder : $"{g.Key.Mixer} {g.Key.Encoder}")]);
        Plots.Save(plot, "Visual Dialog without images: the human answer ranked first among 100 candidates", "encoder",
            "R@1 (%)", path, 1000, 500);
    }
}
