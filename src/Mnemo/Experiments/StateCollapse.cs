using System.Globalization;
using System.Text;
using System.Text.Json;
using Mnemo.IO;
using Mnemo.Reporting;
using Mnemo.Sweeps;
using Mnemo.Training;

namespace Mnemo.Experiments;

/// <summary>One mitigation's score at every evaluation length.</summary>
public sealed record MitigationScore(string Mitigation, IReadOnlyList<LengthAccuracy> Lengths);

/// <summary>Mean over examples of the largest head's ‖S_t‖_F at every position of one layer, under one mitigation.</summary>
public sealed record NormTrace(string Mitigation, int Layer, double[] Norms);

/// <summary>One trained model: its mitigations' scores per length and its state-norm traces.</summary>
public sealed record CollapseCell(
    string Task, string Model, long Parameters, double BestLr, long Steps, double Seconds, string RunDir,
    double[] MaxNormAtTrainLength, double[] MaxNormAtLongest,
    IReadOnlyList<MitigationScore> Scores, IReadOnlyList<NormTrace> Norms);

/// <summary>
/// State collapse beyond the training length and what each training-free mitigation changes (`mnemo collapse`;
/// Stuffed Mamba, Chen et al. 2024; docs/mechanisms.md#state-collapse-mitigations). The bundled sweep "collapse"
/// (or "collapse-quick") trains each model at L at every learning rate, keeps the best by the validation score at L
/// (<see cref="BestLearningRate"/>) and scores the kept weights once at each multiple of L under each of its
/// evaluation variants: no mitigation; forget-more (each λ); state normalisation with τ per layer from the norms seen
/// at t ≤ L; and a sliding window of L tokens (see <see cref="Evaluation.Mitigations.EvalVariants"/>). The per-position
/// state norms at the longest length, as trained and under each mitigation, show whether the state grows past
/// anything seen in training. This class runs that sweep with the sweep engine (resumable, shareable by several
/// workers, with the sweep report) and adds the experiment's own view: results.json, state_norms.png and accuracy.png.
/// </summary>
public static class StateCollapse
{
    public const string ResultsFile = "results.json";
    public const string NormPlotFile = "state_norms.png";
    public const string AccuracyPlotFile = "accuracy.png";
    public const string Preset = "collapse";
    public const string QuickPreset = "collapse-quick";

    /// <summary>The bundled sweep, scored at <paramref name="factors"/> × L when given (<see cref="LengthGrid.WithFactors"/>).</summary>
    public static SweepConfig Sweep(bool quick, IReadOnlyList<int>? factors = null) =>
        LengthGrid.WithFactors(SweepConfig.Load(quick ? QuickPreset : Preset), factors);

    /// <summary>
    /// Runs (or resumes) the sweep in <paramref name="outDir"/>, then writes results.json, state_norms.png and
    /// accuracy.png from every finished cell. Returns the cells in the sweep's order; null when runs remain (in other
    /// workers, the last of which writes them).
    /// </summary>
    public static IReadOnlyList<CollapseCell>? Run(SweepConfig sweep, string outDir, Func<SweepRun, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default, int? threads = null)
    {
        if (sweep.EvalVariants is null)
            throw new ConfigException($"sweep \"{sweep.Name}\" has no eval_variants: the state-collapse view reports mitigations");
        if (SweepRunner.RunToEnd(sweep, outDir, observerFor, progress, cancel, threads) is not { } lines) return null;
        int trainLength = LengthGrid.TrainLength(sweep);
        var order = sweep.Runs().Select(r => r.CellId).Distinct().ToList();
        var kept = SweepResults.Cells(lines).Where(c => c.StateNorms is not null).OrderBy(c => order.IndexOf(c.CellId)).ToList();
        var cells = kept.Select(c => Cell(c, outDir, trainLength)).ToList();
        foreach (var c in cells)
            foreach (var s in c.Scores)
                progress?.Invoke($"{c.Task} {c.Model} · {s.Mitigation}: " +
                    string.Join(", ", s.Lengths.Select(l => $"L={l.SeqLen} {Extrapolation.Headline(c.Task, l):P1}")));
        var window = sweep.EvalVariants.Variants.FirstOrDefault(v => v.Window is not null)?.Window;
        AtomicFile.WriteAllText(Path.Combine(outDir, ResultsFile), JsonSerializer.Serialize(new
        {
            settings = sweep.Name,
            train_length = trainLength,
            eval_lengths = LengthGrid.EvalLengths(sweep),
            window,
            headline = new { mqar = "accuracy (per query, Zoology)", passkey = "exact_match (all digits right)" },
            norms = $"mean over {sweep.EvalVariants.TraceExamples} examples of the largest head's Frobenius norm of the state, " +
                $"per position, at L = {LengthGrid.EvalLengths(sweep).Max()}",
            cells,
        }, ConfigBinder.WriteOptions));
        VariantPlots.Norms(kept.Select(c => (c.Mixer, c.StateNorms!.ReadTraces(outDir))).ToList(), trainLength,
            Path.Combine(outDir, NormPlotFile));
        VariantPlots.Accuracy(kept, c => c.Mixer, trainLength, Path.Combine(outDir, AccuracyPlotFile));
        return cells;
    }

    static CollapseCell Cell(SweepCell c, string outDir, int trainLength) => new(
        c.Task, c.Mixer, c.Parameters, c.BestLr, c.Steps, c.Seconds, Path.Combine(outDir, c.RunDir),
        c.StateNorms!.MaxAtValidation, c.StateNorms.MaxAtLongest,
        c.Variants.Select(v => new MitigationScore(v.Name, v.Slices.Select(s => new LengthAccuracy(s.SeqLen, s.SeqLen / trainLength,
            s.Examples, s.Accuracy, s.ExactMatch)).ToList())).ToList(),
        c.StateNorms.ReadTraces(outDir).Select(t => new NormTrace(t.Variant, t.Layer, t.Norms)).ToList());

    /// <summary>The headline score per (model, mitigation) and length as a Markdown table (passkey: exact match with
    /// per-digit accuracy in brackets; MQAR: per-query accuracy).</summary>
    public static string MarkdownTable(IReadOnlyList<CollapseCell> cells, int trainLength)
    {
        var lengths = cells.SelectMany(c => c.Scores.SelectMany(s => s.Lengths.Select(l => l.SeqLen))).Distinct().Order().ToList();
        var sb = new StringBuilder();
        sb.Append("| task | model | mitigation |");
        foreach (int l in lengths) sb.Append(CultureInfo.InvariantCulture, $" L={l} ({l / trainLength}×) |");
        sb.AppendLine().Append("|---|---|---|").Append(string.Concat(Enumerable.Repeat("---|", lengths.Count))).AppendLine();
        foreach (var c in cells)
            foreach (var s in c.Scores)
            {
                sb.Append(CultureInfo.InvariantCulture, $"| {c.Task} | {c.Model} | {s.Mitigation} |");
                foreach (var l in s.Lengths)
                    sb.Append(c.Task == "passkey"
                        ? string.Create(CultureInfo.InvariantCulture, $" {100 * l.ExactMatch:F1}% ({100 * l.Accuracy:F0}%) |")
                        : string.Create(CultureInfo.InvariantCulture, $" {100 * l.Accuracy:F1}% |"));
                sb.AppendLine();
            }
        return sb.ToString();
    }
}
