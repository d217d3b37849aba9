using Mnemo.Tasks;

namespace Mnemo.Experiments;

/// <summary>PNG plots of the demo (ScottPlot).</summary>
static class DemoPlots
{
    /// <summary>Test accuracy per (L, K) slice, one line per model.</summary>
    public static void Accuracy(IReadOnlyList<DemoModelResult> results, MqarSlice[] slices, string path)
    {
        var plot = new ScottPlot.Plot();
        double[] xs = Enumerable.Range(0, slices.Length).Select(i => (double)i).ToArray();
        foreach (var r in results)
        {
            var line = plot.Add.Scatter(xs, r.Slices.Select(s => 100 * s.Accuracy).ToArray());
            line.LegendText = $"{r.Model} (lr {r.BestLr:G2})";
        }
        plot.Axes.Bottom.SetTicks(xs, slices.Select(s => $"L={s.SeqLen}, K={s.NumKvPairs}").ToArray());
        plot.Axes.SetLimitsY(0, 105);
        plot.Title("MQAR test accuracy (best learning rate per model)");
        plot.YLabel("accuracy (%)");
        plot.ShowLegend();
        plot.SavePng(path, 800, 500);
    }

    /// <summary>Training loss against step, one curve per model.</summary>
    public static void Loss(IReadOnlyDictionary<string, List<(double Step, double Loss)>> curves, string path)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (model, curve) in curves)
        {
            var line = plot.Add.Scatter(curve.Select(p => p.Step).ToArray(), curve.Select(p => p.Loss).ToArray());
            line.LegendText = model;
            line.MarkerSize = 0;
        }
        plot.Title("MQAR training loss (best learning rate per model)");
        plot.XLabel("step");
        plot.YLabel("cross-entropy on the scored positions");
        plot.ShowLegend();
        plot.SavePng(path, 800, 500);
    }
}
