using System.Text.Json;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Sweeps;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Experiments;

/// <summary>The best learning rate's result for one mixer (Zoology reports the max over learning rates).</summary>
public sealed record DemoModelResult(
    string Model, double BestLr, double Accuracy, IReadOnlyList<SliceAccuracy> Slices, IReadOnlyDictionary<string, double> AccuracyByLr,
    long StateFloatsPerLayer, long Parameters, long Steps, double Seconds, string RunDir);

/// <summary>
/// The MQAR demo (`mnemo demo`): the bundled sweep "demo" ("demo-full" with --full) trains each mixer at each
/// learning rate on MQAR; this class runs it with the sweep engine (resumable, shareable by several workers, with
/// the sweep report) and reports the best rate per mixer (<see cref="BestLearningRate"/>): results.json,
/// accuracy.png (accuracy per slice), loss.png (loss curves of the kept runs).
/// </summary>
public static class MqarDemo
{
    public const string Preset = "demo";
    public const string FullPreset = "demo-full";
    public const string ResultsFile = "results.json";
    public const string AccuracyPlotFile = "accuracy.png";
    public const string LossPlotFile = "loss.png";

    public static SweepConfig Sweep(bool full) => SweepConfig.Load(full ? FullPreset : Preset);

    /// <summary>The MQAR test slices every run of the sweep is scored on (the columns of the demo's table).</summary>
    public static MqarSlice[] TestSlices(SweepConfig sweep) => sweep.Runs()[0].Config.Task is MqarConfig m ? m.Test
        : throw new ConfigException($"sweep \"{sweep.Name}\" is not an MQAR sweep: the demo reports MQAR slices");

    /// <summary>
    /// Runs (or resumes) the sweep in <paramref name="outDir"/>, then writes results.json, accuracy.png and loss.png
    /// from its cells. Returns one result per mixer in the sweep's order; null when runs remain (in other workers).
    /// </summary>
    public static IReadOnlyList<DemoModelResult>? Run(SweepConfig sweep, string outDir, Func<SweepRun, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default, int? threads = null)
    {
        var test = TestSlices(sweep);
        if (SweepRunner.RunToEnd(sweep, outDir, observerFor, progress, cancel, threads) is not { } lines) return null;
        var order = sweep.Runs().Select(r => r.CellId).Distinct().ToList();
        var results = SweepResults.Cells(lines).OrderBy(c => order.IndexOf(c.CellId)).Select(c =>
        {
            var best = lines.First(l => l["cell_id"]!.GetValue<string>() == c.CellId && l["lr"]!.GetValue<double>() == c.BestLr);
            var slices = best["slices"]!.AsArray().Select(s => new SliceAccuracy(
                s!["seq_len"]!.GetValue<int>(), s["num_kv_pairs"]!.GetValue<int>(), s["examples"]!.GetValue<long>(),
                s["accuracy"]?.GetValue<double>() ?? double.NaN, s["exact_match"]?.GetValue<double>() ?? double.NaN)).ToList();
            return new DemoModelResult(c.Mixer, c.BestLr, c.Score, slices,
                c.ValidationByLr.OrderBy(kv => kv.Key).ToDictionary(kv => SweepConfig.LrText(kv.Key), kv => kv.Value),
                c.StateFloatsPerLayer, c.Parameters, c.Steps, c.Seconds, Path.Combine(outDir, c.RunDir));
        }).ToList();
        AtomicFile.WriteAllText(Path.Combine(outDir, ResultsFile),
            JsonSerializer.Serialize(new { settings = sweep.Name, models = results }, ConfigBinder.WriteOptions));
        DemoPlots.Accuracy(results, test, Path.Combine(outDir, AccuracyPlotFile));
        DemoPlots.Loss(results.ToDictionary(r => r.Model, r => Trainer.LossCurve(r.RunDir)), Path.Combine(outDir, LossPlotFile));
        return results;
    }
}
