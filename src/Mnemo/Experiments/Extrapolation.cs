using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Sweeps;
using Mnemo.Tasks;
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
/// Length extrapolation of recall: trains every mixer on MQAR and on passkey retrieval at length L (each at every
/// learning rate; the best on the validation set at L is kept, see BestLearningRate, as Zoology reports the max),
/// then scores the kept model on fresh examples at each multiple of L. Writes results.json and extrapolation.png.
/// <para>
/// Selecting on L only keeps the longer lengths unseen in every sense. MQAR at m·L keeps the K pairs and draws the
/// query gaps over an m-times longer query region: the number of facts stays, the distances and the amount of random
/// filler grow, so the test isolates length from capacity. Passkey at m·L is the same needle in an m-times longer
/// haystack, needle depths evenly spread. The headline score is per-query accuracy for MQAR (Zoology) and exact match
/// of all digits for passkey (S-NIAH's string match).
/// </para>
/// Runs resume like the demo's: an interrupted experiment picks up where it stopped.
/// </summary>
public static class Extrapolation
{
    public const string ResultsFile = "results.json";
    public const string PlotFile = "extrapolation.png";

    public static IReadOnlyList<ExtrapolationCell> Run(
        ExtrapolationSettings settings, string outDir, Func<RunConfig, string, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default)
    {
        CheckSettings(settings);
        Directory.CreateDirectory(outDir);
        var cells = new List<ExtrapolationCell>();
        foreach (var task in settings.Tasks)
        {
            var evalSlices = settings.EvalTask(task).TestBatches();
            foreach (var mixer in settings.Mixers)
            {
                var (runs, diverged) = TrainAtEveryRate(settings, task, mixer, outDir, observerFor, progress, cancel);
                var best = Best(runs);
                var lengths = Score(best.Config, best.Outcome.RunDir, evalSlices, settings.TrainLength);
                var cell = new ExtrapolationCell(
                    Json(task), Json(mixer), best.Outcome.Parameters, best.Lr,
                    runs.ToDictionary(r => r.Lr.ToString("G3"), r => r.Outcome.TestAccuracy),
                    best.Outcome.Steps, best.Outcome.ElapsedSeconds, best.Outcome.RunDir, lengths, diverged.Count == 0 ? null : diverged);
                cells.Add(cell);
                progress?.Invoke($"{cell.Task} {cell.Model} (lr {cell.BestLr:G3}): " +
                    string.Join(", ", lengths.Select(l => $"L={l.SeqLen} {Headline(cell.Task, l):P1}")));
            }
        }
        AtomicFile.WriteAllText(Path.Combine(outDir, ResultsFile), JsonSerializer.Serialize(new
        {
            settings = settings.Name,
            train_length = settings.TrainLength,
            eval_lengths = settings.EvalLengths,
            headline = new { mqar = "accuracy (per query, Zoology)", passkey = "exact_match (all digits right)" },
            cells,
        }, ConfigBinder.WriteOptions));
        ExtrapolationPlot.Write(cells, settings.TrainLength, Path.Combine(outDir, PlotFile));
        return cells;
    }

    /// <summary>A (task, mixer)'s run at one learning rate.</summary>
    public sealed record TrainedRun(double Lr, TrainingOutcome Outcome, RunConfig Config);

    /// <summary>
    /// Trains one (task, mixer) at every learning rate of the settings (resuming finished or interrupted runs under
    /// outDir/runs), skipping rates that diverged before. Returns the runs that finished and the step at which each
    /// diverged rate blew up; throws when every rate diverged.
    /// </summary>
    public static (List<TrainedRun> Runs, Dictionary<string, long> Diverged) TrainAtEveryRate(
        ExtrapolationSettings settings, ExtrapolationTask task, MixerKind mixer, string outDir,
        Func<RunConfig, string, ITrainingObserver?> observerFor, Action<string>? progress, CancellationToken cancel)
    {
        var runs = new List<TrainedRun>();
        var diverged = new Dictionary<string, long>();
        foreach (double lr in settings.LearningRates)
        {
            var config = settings.RunConfig(task, mixer, lr);
            string runDir = Path.Combine(outDir, "runs", $"{Json(task)}-{Json(mixer)}-lr{lr:G3}");
            string divergedMarker = Path.Combine(runDir, "diverged");
            if (File.Exists(divergedMarker))
            {
                diverged[lr.ToString("G3")] = long.Parse(File.ReadAllText(divergedMarker));
                continue;
            }
            try
            {
                var outcome = new Trainer(config, runDir, observerFor(config, runDir))
                    .Run(resume: Checkpoint.List(runDir).Count > 0, cancel);
                if (outcome.Interrupted) throw new OperationCanceledException("experiment interrupted; run it again to continue");
                runs.Add(new TrainedRun(lr, outcome, config));
            }
            catch (TrainingDivergedException e)
            {
                // A learning rate too large for a model is a result of the sweep, not a reason to stop it.
                diverged[lr.ToString("G3")] = e.Step;
                AtomicFile.WriteAllText(divergedMarker, e.Step.ToString(System.Globalization.CultureInfo.InvariantCulture));
                progress?.Invoke($"{Json(task)} {Json(mixer)} lr {lr:G3}: {e.Message}");
            }
        }
        if (runs.Count == 0)
            throw new MnemoException($"{Json(task)} {Json(mixer)}: " +
                $"training diverged at every learning rate ({string.Join(", ", diverged.Keys)})");
        return (runs, diverged);
    }

    /// <summary>The run a cell is reported at: <see cref="BestLearningRate"/> on the validation set at L.</summary>
    public static TrainedRun Best(IEnumerable<TrainedRun> runs)
    {
        var list = runs.ToList();
        return BestLearningRate.Pick(list, list[0].Config.ActiveTask.ReportedScore(), r => r.Lr, r => r.Outcome);
    }

    /// <summary>A finished run's final weights.</summary>
    public static LanguageModel LoadTrained(RunConfig config, string runDir)
    {
        var model = new LanguageModel(config.ResolvedModel);
        TensorIO.LoadStateDict(model, Path.Combine(Checkpoint.List(runDir)[^1], Checkpoint.ModelFile));
        return model;
    }

    /// <summary>The score a task is judged by: exact match for passkey, per-query accuracy for MQAR.</summary>
    public static double Headline(string task, LengthAccuracy a) => task == Json(ExtrapolationTask.Passkey) ? a.ExactMatch : a.Accuracy;

    /// <summary>Loads a run's final weights and scores them on each evaluation slice.</summary>
    static List<LengthAccuracy> Score(RunConfig config, string runDir, TaskBatch[] slices, int trainLength)
    {
        using var model = LoadTrained(config, runDir);
        var result = MqarEvaluator.Evaluate(model, slices);
        return result.Slices.Select(s => new LengthAccuracy(s.SeqLen, s.SeqLen / trainLength, s.Examples, s.Accuracy, s.ExactMatch))
            .ToList();
    }

    /// <summary>
    /// Fails before any training when a setting is invalid: every run config and evaluation task goes through the
    /// config binder (ranges and cross-field rules, errors naming the field), as a config file would.
    /// </summary>
    internal static void CheckSettings(ExtrapolationSettings s)
    {
        if (s.Mixers.Length == 0 || s.Tasks.Length == 0 || s.LearningRates.Length == 0 || s.EvalFactors.Length == 0)
            throw new ConfigException($"extrapolation settings \"{s.Name}\": mixers, tasks, " +
                $"learning rates and eval factors must each list at least one");
        if (s.EvalFactors.Any(f => f < 1))
            throw new ConfigException($"extrapolation settings \"{s.Name}\": eval factors must be ≥ 1, " +
                $"got {string.Join(", ", s.EvalFactors)}");
        foreach (var task in s.Tasks)
        {
            foreach (var mixer in s.Mixers)
                foreach (double lr in s.LearningRates)
                    RunConfig.Parse(s.RunConfig(task, mixer, lr).ToJson(),
                        $"extrapolation settings \"{s.Name}\" ({Json(task)}, {Json(mixer)}, lr {lr:G3})");
            var eval = s.EvalTask(task);
            string source = $"extrapolation settings \"{s.Name}\" (evaluation of {Json(task)})";
            var node = JsonNode.Parse(JsonSerializer.Serialize(eval, eval.GetType(), ConfigBinder.WriteOptions));
            if (eval is MqarConfig) ConfigBinder.Bind<MqarConfig>(node, source);
            else ConfigBinder.Bind<PasskeyConfig>(node, source);
        }
    }

    internal static string Json<T>(T value) where T : Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());
}
