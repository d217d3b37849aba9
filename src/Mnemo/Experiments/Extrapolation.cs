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

    /// <summary>The bundled sweep, scored at <paramref name="factors"/> × L when given (the same examples per
    /// length and evaluation seed as bundled; max_positions grown to cover the longest length).</summary>
    public static SweepConfig Sweep(bool quick, IReadOnlyList<int>? factors = null)
    {
        var sweep = SweepConfig.Load(quick ? QuickPreset : Preset);
        if (factors is null || factors.Count == 0) return sweep;
        if (factors.Any(f => f < 1))
            throw new ConfigException($"--factors must each be ≥ 1, got {string.Join(", ", factors)}");
        var runs = sweep.Runs();
        int trainLength = TrainLength(sweep);
        var lengths = LengthGrid.Lengths(trainLength, factors);
        var taskAxis = sweep.Axes.Single(a => a.Name == "task");
        var values = taskAxis.Values.Select(v =>
        {
            var run = runs.First(r => r.Cell["task"] == v.Name);
            var (examples, seed) = run.FinalEval!.Task switch
            {
                MqarConfig m => (m.Test[0].NumExamples, m.TestSeed),
                PasskeyConfig p => (p.Test[0].NumExamples, p.TestSeed),
                var t => throw new ConfigException($"the extrapolate sweep's task {t.GetType().Name} is not MQAR or passkey"),
            };
            var eval = LengthGrid.TestAt(run.Config.Task, lengths, examples, seed);
            var test = eval is MqarConfig mq
                ? JsonSerializer.Serialize(mq.Test, ConfigBinder.WriteOptions) : JsonSerializer.Serialize(((PasskeyConfig)eval).Test,
                    ConfigBinder.WriteOptions);
            return v with { FinalEval = [$"task.test={Compact(test)}", $"task.test_seed={seed}"] };
        }).ToArray();
        int maxPositions = Math.Max(sweep.Base.Model.MaxPositions, lengths.Max());
        var updated = sweep with
        {
            Base = sweep.Base with { Model = sweep.Base.Model with { MaxPositions = maxPositions } },
            Axes = sweep.Axes.Select(a => a.Name == "task" ? a with { Values = values } : a).ToArray(),
        };
        _ = updated.Runs($"{sweep.Name} with --factors {string.Join(" ", factors)}");   // every run validated before training
        return updated;
    }

    static string Compact(string json) => JsonNode.Parse(json)!.ToJsonString();

    /// <summary>The training length L: the longest sequence a run trains or validates on.</summary>
    public static int TrainLength(SweepConfig sweep) => sweep.Runs()[0].Config.Task.LongestSeqLen();

    /// <summary>The lengths a sweep's final evaluation scores.</summary>
    public static int[] EvalLengths(SweepConfig sweep) =>
        sweep.Runs()[0].FinalEval!.Task.TestBatches().Select(b => b.SeqLen).ToArray();

    /// <summary>
    /// Runs (or resumes) the sweep in <paramref name="outDir"/>, then writes its report, results.json and
    /// extrapolation.png from every finished cell. Returns the cells; null when runs remain (in other workers).
    /// </summary>
    public static IReadOnlyList<ExtrapolationCell>? Run(SweepConfig sweep, string outDir, Func<SweepRun, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default)
    {
        var done = SweepRunner.Run(sweep, outDir, observerFor, progress, cancel);
        if (done.Remaining > 0)
        {
            progress?.Invoke($"{done.Remaining} runs remain (in progress in other workers); the last worker writes the results");
            return null;
        }
        int trainLength = TrainLength(sweep);
        var lines = SweepLedger.ReadResults(Path.Combine(outDir, SweepLedger.ResultsFile));
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
        return BestLearningRate.Pick(list, list[0].Config.Task.ReportedScore(), r => r.Lr, r => r.Outcome);
    }

    /// <summary>A finished run's final weights.</summary>
    public static LanguageModel LoadTrained(RunConfig config, string runDir)
    {
        var model = config.NewModel();
        TensorIO.LoadStateDict(model, Path.Combine(Checkpoint.List(runDir)[^1], Checkpoint.ModelFile));
        return model;
    }

    /// <summary>The score a task is judged by: exact match for passkey, per-query accuracy for MQAR.</summary>
    public static double Headline(string task, LengthAccuracy a) => task == Json(ExtrapolationTask.Passkey) ? a.ExactMatch : a.Accuracy;

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
