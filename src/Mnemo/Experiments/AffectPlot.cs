using Mnemo.Reporting;
using Mnemo.Runtime;

namespace Mnemo.Experiments;

/// <summary>Accuracy of each <see cref="AffectStudy"/> classifier on each modality set: the median over seeds as a bar,
/// the lowest and highest seed as a line through it.</summary>
public static class AffectPlot
{
    public static void Save(IReadOnlyList<AffectRun> runs, string path)
    {
        var plot = new ScottPlot.Plot();
        var colors = new ScottPlot.Palettes.Category10();
        var classifiers = runs.Select(r => r.Classifier).Distinct().ToArray();
        var sets = runs.Select(r => r.Modalities).Distinct().ToArray();
        for (int s = 0; s < sets.Length; s++)
        {
            var color = colors.GetColor(s);
            for (int k = 0; k < classifiers.Length; k++)
            {
                double[] values =
                    [.. runs.Where(r => r.Modalities == sets[s] && r.Classifier == classifiers[k]).Select(r => 100 * r.Accuracy)];
                double x = k * (sets.Length + 1) + s;
                Plots.MedianBar(plot, x, values, color);
            }
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = sets[s], FillColor = color });
        }
        plot.Axes.Bottom.SetTicks([.. classifiers.Select((_, k) => k * (sets.Length + 1) + (sets.Length - 1) / 2.0)],
            [.. classifiers.Select(k => Names.Of(k))]);
        Plots.Save(plot, "Affect in context: utterance accuracy by classifier and modalities (median over seeds)", "classifier",
            "accuracy (%)", path, 900, 500);
    }
}
