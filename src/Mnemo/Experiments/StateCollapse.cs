using System.Globalization;
using System.Text;
using System.Text.Json;
using Mnemo.Evaluation;
using Mnemo.Experiments.Mitigations;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Tasks;
using Mnemo.Training;
using static TorchSharp.torch;

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
/// State collapse beyond the training length and what each training-free mitigation changes (Stuffed Mamba,
/// Chen et al. 2024; docs/mechanisms.md#state-collapse-mitigations). Each model trains at L (as in
/// <see cref="Extrapolation"/>, resumable), then the same weights are scored at every evaluation length with:
/// no mitigation; forget-more (each λ); state normalisation with τ per layer from the norms seen at t ≤ L; and a
/// sliding window of r tokens (see <see cref="MemoryEvalOptions"/>). The per-position state norms at the longest
/// length, as trained and under each mitigation, show whether the state grows past anything seen in training.
/// Writes results.json, state_norms.png and accuracy.png.
/// </summary>
public static class StateCollapse
{
    public const string ResultsFile = "results.json";
    public const string NormPlotFile = "state_norms.png";
    public const string AccuracyPlotFile = "accuracy.png";

    /// <summary>The mitigations in report order; the norm cap τ is per layer, a margin times the largest norm at t ≤ L.</summary>
    public static IReadOnlyList<(string Name, Func<int, MemoryEvalOptions> Options)> Mitigations(
        StateCollapseSettings s, double[] maxNormAtTrain) =>
    [
        ("none", _ => MemoryEvalOptions.None),
        .. s.ForgetScales.Select(l => ($"forget λ={l.ToString("G3", CultureInfo.InvariantCulture)}",
            (Func<int, MemoryEvalOptions>)(_ => new MemoryEvalOptions { ForgetScale = l }))),
        .. s.NormCapMargins.Select(m => ($"state norm τ={m.ToString("G3", CultureInfo.InvariantCulture)}×max@L",
            (Func<int, MemoryEvalOptions>)(layer => new MemoryEvalOptions { StateNormCap = maxNormAtTrain[layer] * m }))),
        ($"window r={s.WindowTokens}", _ => new MemoryEvalOptions { Window = s.WindowTokens }),
    ];

    /// <summary>The mixers whose memory is a matrix state (the ones <see cref="MemoryEvalOptions"/> act on).</summary>
    public static readonly MixerKind[] MatrixMemories =
    [
        MixerKind.Mamba2, MixerKind.Gla, MixerKind.Retnet, MixerKind.GatedDeltaNet,
        MixerKind.DeltaNet, MixerKind.LinearAttention,
    ];

    public static IReadOnlyList<CollapseCell> Run(
        StateCollapseSettings settings, string outDir, Func<RunConfig, string, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default)
    {
        var training = settings.Training;
        Extrapolation.CheckSettings(training);
        if (settings.ForgetScales.Any(l => !(l >= 1)))
            throw new ConfigException($"state-collapse settings \"{settings.Name}\": forget scales λ must be ≥ 1, " +
                $"got {string.Join(", ", settings.ForgetScales)}");
        if (!(settings.NormCapMargins.All(m => m > 0)) || settings.NormExamples < 1 || settings.NormTraceExamples < 1)
            throw new ConfigException($"state-collapse settings \"{settings.Name}\": " +
                $"--norm-cap margins must be > 0 (got {string.Join(", ", settings.NormCapMargins)}) and the example counts ≥ 1");
        var notMatrix = training.Mixers.Where(m => !MatrixMemories.Contains(m)).ToArray();
        if (notMatrix.Length > 0)
            throw new ConfigException($"state-collapse settings \"{settings.Name}\": " +
                $"{string.Join(", ", notMatrix.Select(m => Extrapolation.Json(m)))} has no matrix memory; " +
                "the mitigations apply to mamba2, gla, retnet, gated_delta_net, delta_net and linear_attention");
        Directory.CreateDirectory(outDir);
        var cells = new List<CollapseCell>();
        foreach (var task in training.Tasks)
        {
            var slices = training.EvalTask(task).TestBatches();
            foreach (var mixer in training.Mixers)
            {
                var (runs, _) = Extrapolation.TrainAtEveryRate(training, task, mixer, outDir, observerFor, progress, cancel);
                var best = Extrapolation.Best(runs);
                cancel.ThrowIfCancellationRequested();
                var cell = Measure(settings, task, best, slices, progress, cancel);
                cells.Add(cell);
            }
        }
        AtomicFile.WriteAllText(Path.Combine(outDir, ResultsFile), JsonSerializer.Serialize(new
        {
            settings = settings.Name,
            train_length = training.TrainLength,
            eval_lengths = training.EvalLengths,
            window = settings.WindowTokens,
            headline = new { mqar = "accuracy (per query, Zoology)", passkey = "exact_match (all digits right)" },
            norms = $"mean over {settings.NormTraceExamples} examples of the largest head's Frobenius norm of the state, per position, " +
                $"at L = {training.EvalLengths.Max()}",
            cells,
        }, ConfigBinder.WriteOptions));
        StateCollapsePlot.Norms(cells, training.TrainLength, Path.Combine(outDir, NormPlotFile));
        StateCollapsePlot.Accuracy(cells, training.TrainLength, Path.Combine(outDir, AccuracyPlotFile));
        return cells;
    }

    static CollapseCell Measure(StateCollapseSettings settings, ExtrapolationTask task, Extrapolation.TrainedRun best, TaskBatch[] slices,
        Action<string>? progress, CancellationToken cancel)
    {
        var training = settings.Training;
        string taskName = Extrapolation.Json(task), model = Extrapolation.Json(best.Config.Model.Mixer);
        using var lm = Extrapolation.LoadTrained(best.Config, best.Outcome.RunDir);
        if (MemoryEval.Memories(lm).Count == 0)
            throw new MnemoException($"{model} has no matrix memory: the state-collapse mitigations apply to Mamba-2, GLA, RetNet, " +
                $"(Gated) DeltaNet and linear attention");
        int layers = lm.Config.NumLayers;

        // τ per layer from the training length: the validation examples at L (never the longer test lengths).
        var atTrain = best.Config.Task.TestBatches()[0];
        var trainNorms = Norms(lm, atTrain, settings.NormExamples, MemoryEvalOptions.None);
        var maxAtTrain = PerLayer(trainNorms, layers, l => l.Max(training.TrainLength));
        var mitigations = Mitigations(settings, maxAtTrain);

        // Per-position norms at the longest length: as trained and under each mitigation that runs the step form.
        var longest = slices.MaxBy(s => s.SeqLen)!;
        var traces = new List<NormTrace>();
        double[] maxAtLongest = [];
        foreach (var (name, options) in mitigations)
        {
            if (options(0).Window is not null) continue;                       // the window runs the sequence form
            var norms = Norms(lm, longest, settings.NormTraceExamples, options);
            if (name == "none") maxAtLongest = PerLayer(norms, layers, l => l.Max(l.Positions));
            traces.AddRange(norms.Select(l => new NormTrace(name, l.Layer, l.MeanOfMaxHead())));
        }

        var scores = new List<MitigationScore>();
        foreach (var (name, options) in mitigations)
        {
            cancel.ThrowIfCancellationRequested();
            MemoryEval.Apply(lm, options);
            var result = MqarEvaluator.Evaluate(lm, slices, batchSize: 64);
            var lengths = result.Slices.Select(s => new LengthAccuracy(s.SeqLen, s.SeqLen / training.TrainLength, s.Examples, s.Accuracy,
                s.ExactMatch)).ToList();
            scores.Add(new MitigationScore(name, lengths));
            progress?.Invoke($"{taskName} {model} · {name}: " + string.Join(", ",
                lengths.Select(l => $"L={l.SeqLen} {Headline(taskName, l):P1}")));
        }
        MemoryEval.Apply(lm, MemoryEvalOptions.None);
        return new CollapseCell(taskName, model, best.Outcome.Parameters, best.Lr, best.Outcome.Steps, best.Outcome.ElapsedSeconds,
            best.Outcome.RunDir, maxAtTrain, maxAtLongest, scores, traces);
    }

    static double Headline(string task, LengthAccuracy a) => task == "passkey" ? a.ExactMatch : a.Accuracy;

    static IReadOnlyList<LayerStateNorms> Norms(Mnemo.Models.LanguageModel lm, TaskBatch slice, int examples,
        Func<int, MemoryEvalOptions> options)
    {
        // Rows spread over the slice: passkey's even depths put example i's needle at depth (i + 0.5)/n, so the first
        // rows alone would all have shallow needles.
        int n = Math.Min(examples, slice.Count);
        int[] rows = Enumerable.Range(0, n).Select(i => (int)((long)i * slice.Count / n)).ToArray();
        using var scope = NewDisposeScope();
        var (inputs, _) = MqarEvaluator.ToTensors(slice, rows);
        return MemoryEval.StateNorms(lm, inputs, options);                  // per-layer options: τ differs by layer
    }

    static IReadOnlyList<LayerStateNorms> Norms(Mnemo.Models.LanguageModel lm, TaskBatch slice, int examples, MemoryEvalOptions options) =>
        Norms(lm, slice, examples, _ => options);

    static double[] PerLayer(IReadOnlyList<LayerStateNorms> norms, int layers, Func<LayerStateNorms, double> f)
    {
        var result = new double[layers];
        foreach (var l in norms) result[l.Layer] = f(l);
        return result;
    }

    /// <summary>The headline score per (model, mitigation) and length as a Markdown table.</summary>
    public static string MarkdownTable(IReadOnlyList<CollapseCell> cells, StateCollapseSettings settings)
    {
        var t = settings.Training;
        var sb = new StringBuilder();
        sb.Append("| task | model | mitigation |");
        foreach (var (l, f) in t.EvalLengths.Zip(t.EvalFactors)) sb.Append(CultureInfo.InvariantCulture, $" L={l} ({f}×) |");
        sb.AppendLine().Append("|---|---|---|").Append(string.Concat(Enumerable.Repeat("---|", t.EvalLengths.Length))).AppendLine();
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
