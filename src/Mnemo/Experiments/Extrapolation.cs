using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Sweeps;
using Mnemo.Training;

namespace Mnemo.Experiments;

/// <summary>Score of a trained model at one evaluation length.</summary>
public sealed record LengthAccuracy(int SeqLen, int Factor, long Examples, double Accuracy, double ExactMatch);

/// <summary>One (task, model) cell: the best learning rate's run, scored at every evaluation length.</summary>
public sealed record ExtrapolationCell(
    string Task, string Model, long Parameters, double BestLr, IReadOnlyDictionary<string, double> ValidationAccuracyByLr,
    long Steps, double Seconds, string RunDir, IReadOnlyList<LengthAccuracy> Lengths,
    IReadOnlyDictionary<string, long>? DivergedAtStep = null);

/// <summary>
/// Length extrapolation of recall (`mnemo extrapolate`): the bundled sweep "extrapolate" (or "extrapolate-quick")
/// trains every mixer on MQAR and on passkey retrieval at length L at every learning rate, keeps the best by the
/// validation score at L (<see cref="BestLearningRate"/>, as Zoology reports the max over learning rates) and scores
/// the kept weights once on fresh examples at each multiple of L (the sweep's final evaluation). This class runs that
/// sweep with the sweep engine (resumable, shareable by several workers, with the sweep report) and adds the
/// experiment's own view of the cells: results.json and extrapolation.png.
/// <para>
/// Selecting on L only keeps the longer lengths unseen in every sense. MQAR at m·L keeps the K pairs and draws the
/// query gaps over an m-times longer query region: the number of facts stays, the distances and the amount of random
/// filler grow, so the test isolates length from capacity. Passkey at m·L is the same needle in an m-times longer
/// haystack, needle depths evenly spread. The headline score is per-query accuracy for MQAR (Zoology) and exact match
/// of all digits for passkey (S-NIAH's string match).
/// </para>
/// </summary>
public static class Extrapolation
{
    public const string ResultsFile = "results.json";
    public const string PlotFile = "extrapolation.png";
    public const string Preset = "extrapolate";
    public const string QuickPreset = "extrapolate-quick";

    /// <summary>The bundled sweep, scored at <paramref name="factors"/> × L when given (<see cref="LengthGrid.WithFactors"/>).</summary>
    public static SweepConfig Sweep(bool quick, IReadOnlyList<int>? factors = null) =>
        LengthGrid.WithFactors(SweepConfig.Load(quick ? QuickPreset : Preset), factors);

    /// <summary>
    /// Runs (or resumes) the sweep in <paramref name="outDir"/>, then writes its report, results.json and
    /// extrapolation.png from every finished cell. Returns the cells; null when runs remain (in other workers).
    /// </summary>
    public static IReadOnlyList<ExtrapolationCell>? Run(SweepConfig sweep, string outDir, Func<SweepRun, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default, int? threads = null)
    {
        if (SweepRunner.RunToEnd(sweep, outDir, observerFor, progress, cancel, threads) is not { } lines) return null;
        int trainLength = LengthGrid.TrainLength(sweep);
        var cells = Cells(lines, outDir, trainLength);
        foreach (var cell in cells)
            progress?.Invoke($"{cell.Task} {cell.Model} (lr {cell.BestLr:G3}): " +
                string.Join(", ", cell.Lengths.Select(l => $"L={l.SeqLen} {Headline(cell.Task, l):P1}")));
        var lengths = cells.SelectMany(c => c.Lengths.Select(l => l.SeqLen)).Distinct().Order().ToArray();
        AtomicFile.WriteAllText(Path.Combine(outDir, ResultsFile), JsonSerializer.Serialize(new
        {
            settings = sweep.Name,
            train_length = trainLength,
            eval_lengths = lengths,
            headline = new { mqar = "accuracy (per query, Zoology)", passkey = "exact_match (all digits right)" },
            cells,
        }, ConfigBinder.WriteOptions));
        ExtrapolationPlot.Write(cells, trainLength, Path.Combine(outDir, PlotFile));
        return cells;
    }

    /// <summary>The sweep's cells (task × model at the best learning rate) as the experiment reports them; a cell
    /// whose every learning rate diverged has no entry (the sweep report lists its runs).</summary>
    public static List<ExtrapolationCell> Cells(IReadOnlyList<JsonObject> lines, string outDir, int trainLength)
    {
        var diverged = lines.Where(l => l["status"]?.GetValue<string>() == "diverged")
            .GroupBy(l => l["cell_id"]!.GetValue<string>())
            .ToDictionary(g => g.Key, g => g.ToDictionary(l => SweepConfig.LrText(l["lr"]!.GetValue<double>()),
                l => l["diverged_at_step"]?.GetValue<long>() ?? 0));
        return SweepResults.Cells(lines).Select(c => new ExtrapolationCell(
            c["task"], c["model"], c.Parameters, c.BestLr,
            c.ValidationByLr.OrderBy(kv => kv.Key).ToDictionary(kv => SweepConfig.LrText(kv.Key), kv => kv.Value),
            c.Steps, c.Seconds, Path.Combine(outDir, c.RunDir),
            c.Slices.Select(s => new LengthAccuracy(s.SeqLen, s.SeqLen / trainLength, s.Examples, s.Accuracy, s.ExactMatch)).ToList(),
            diverged.GetValueOrDefault(c.CellId))).ToList();
    }

    /// <summary>The score a task is judged by: exact match for passkey, per-query accuracy for MQAR.</summary>
    public static double Headline(string task, LengthAccuracy a) => task == "passkey" ? a.ExactMatch : a.Accuracy;
}
