using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Evaluation;
using Mnemo.Evaluation.Mitigations;
using Mnemo.IO;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Training;

namespace Mnemo.Sweeps;

/// <summary>What one worker did in one pass over a sweep; Remaining counts runs without a result at its end (some
/// perhaps in progress in other workers).</summary>
public sealed record SweepProgress(int Total, int AlreadyDone, int Ran, int Diverged, int Remaining, int ClaimedElsewhere);

/// <summary>
/// A sweep worker: walks the runs in order, skips those with a result, claims the next free one, trains it (resuming
/// from its checkpoint if an earlier worker was killed), scores it, appends its result line and moves on. Any number
/// of workers may run the same sweep folder at once (see <see cref="SweepLedger"/>); each run is done exactly once.
/// </summary>
public static class SweepRunner
{
    public const string ConfigFile = "sweep.json";

    /// <param name="threads">the worker's libtorch threads (a command's --threads; 0 chooses them per run, see
    /// <see cref="WorkerThreads"/>); null leaves libtorch's thread count as it is</param>
    public static SweepProgress Run(
        SweepConfig sweep, string outDir, Func<SweepRun, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default, int? threads = null)
    {
        var runs = sweep.Runs();
        Directory.CreateDirectory(outDir);
        WriteConfig(sweep, outDir);
        var ledger = new SweepLedger(outDir);
        var done = ledger.Finished();
        int alreadyDone = runs.Count(r => done.Contains(r.Id)), ran = 0, diverged = 0;
        progress?.Invoke($"sweep {sweep.Name}: {runs.Count} runs ({runs.Select(r => r.CellId).Distinct().Count()} cells × " +
            $"{sweep.LearningRates.Length} learning rates), {alreadyDone} already done; results {ledger.ResultsPath}");
        // Passes until one claims nothing: a run released by an interrupted worker, or left by a killed one (its claim
        // gone stale) after this worker went past it, is picked up rather than left for nobody.
        for (bool claimed = true; claimed;)
        {
            claimed = false;
            for (int i = 0; i < runs.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var run = runs[i];
                if (!ledger.TryClaim(run)) continue;
                claimed = true;
                try
                {
                    string note = "";
                    if (threads is int requested)
                    {
                        int others = ledger.ClaimedElsewhere();
                        int use = WorkerThreads(requested, run.Config.Training.Threads, Environment.ProcessorCount, others);
                        TorchRuntime.Initialise(use);
                        note = $" ({use} libtorch threads; {others} other runs in progress)";
                    }
                    progress?.Invoke($"[{i + 1}/{runs.Count}] {run.Id}{note}");
                    var result = Execute(run, outDir, observerFor(run), cancel);
                    ledger.Append(result);
                    ran++;
                    if (result["status"]!.GetValue<string>() == "diverged") diverged++;
                    progress?.Invoke($"[{i + 1}/{runs.Count}] {run.Id}: {Summary(result)}");
                }
                finally
                {
                    ledger.Release(run);
                }
            }
        }
        var finished = ledger.Finished();
        return new SweepProgress(runs.Count, alreadyDone, ran, diverged, runs.Count(r => !finished.Contains(r.Id)),
            ledger.ClaimedElsewhere());
    }

    /// <summary>
    /// libtorch threads for one run of a worker: the worker's --threads if given, else the run config's
    /// training.threads if set, else the cores shared out among the workers training now (this one and those holding
    /// live claims; at least 1 each), so workers on one machine do not oversubscribe it: two workers on 2 cores train
    /// with 1 thread each, a lone worker with all of them. Chosen when a run is claimed, so a worker that started alone
    /// keeps its threads until its next run.
    /// </summary>
    public static int WorkerThreads(int requested, int runConfig, int cores, int otherWorkers) =>
        requested > 0 ? requested : runConfig > 0 ? runConfig : Math.Max(1, cores / (1 + Math.Max(0, otherWorkers)));

    /// <summary>
    /// What a command that reports a whole sweep runs (the aliases demo, extrapolate, collapse): <see cref="Run"/>, then
    /// every result line when no run remains; null, after saying so, when runs remain (in progress in other workers,
    /// the last of which reports).
    /// </summary>
    public static List<JsonObject>? RunToEnd(
        SweepConfig sweep, string outDir, Func<SweepRun, ITrainingObserver?> observerFor,
        Action<string>? progress = null, CancellationToken cancel = default, int? threads = null)
    {
        var done = Run(sweep, outDir, observerFor, progress, cancel, threads);
        if (done.Remaining == 0) return SweepLedger.ReadResults(Path.Combine(outDir, SweepLedger.ResultsFile));
        progress?.Invoke($"{done.Remaining} runs remain (in progress in other workers); the last worker writes the results");
        return null;
    }

    /// <summary>
    /// The sweep's config beside its results, so a report (or another worker) sees what was asked. A folder already
    /// holding a different sweep is refused: a run whose id stays but whose config changed would otherwise keep the old
    /// result, or resume the old checkpoints. Growing a sweep (new axis values, new learning rates) is allowed.
    /// </summary>
    static void WriteConfig(SweepConfig sweep, string outDir)
    {
        string path = Path.Combine(outDir, ConfigFile), json = ConfigBinder.ToJson(sweep);
        if (File.Exists(path))
        {
            if (File.ReadAllText(path) == json) return;
            var earlier = SweepConfig.ParseSaved(File.ReadAllText(path), path);
            var mine = sweep.Runs().ToDictionary(r => r.Id);
            if (earlier.Name != sweep.Name)
                throw new MnemoException($"{outDir} holds sweep \"{earlier.Name}\", not \"{sweep.Name}\"; use another --out, " +
                    $"or delete that folder");
            foreach (var run in earlier.Runs())
            {
                if (!mine.TryGetValue(run.Id, out var now))
                    throw new MnemoException($"{outDir} holds run {run.Id}, which this config of sweep \"{sweep.Name}\" does not have; " +
                        $"use another --out, or delete that folder");
                if (Fingerprint(now) != Fingerprint(run))
                    throw new MnemoException($"run {run.Id} of sweep \"{sweep.Name}\" has a different config from the one in {path} " +
                        $"(results and checkpoints there belong to the old one); use another --out, or delete that folder");
            }
        }
        AtomicFile.WriteAllText(path, json);
    }

    static string Fingerprint(SweepRun run) => run.Config.ToJson() + "\n" + run.FinalEval?.ToJson() + "\n" +
        (run.Variants is null ? "" : ConfigBinder.ToJson(run.Variants));

    /// <summary>Trains (or resumes) one run and returns its result line; a diverged run is a result too.</summary>
    static JsonObject Execute(SweepRun run, string outDir, ITrainingObserver? observer, CancellationToken cancel)
    {
        string runDir = Path.Combine(outDir, "runs", run.Folder);
        var line = new JsonObject
        {
            ["id"] = run.Id,
            ["cell_id"] = run.CellId,
            ["cell"] = run.CellJson(),
            ["lr"] = run.Lr,
            ["task"] = run.Config.TaskKind,
            ["headline"] = run.Config.Task.ReportedScore(),
            ["mixer"] = Names.Of(run.Config.ResolvedModel.Mixer),
            ["run_dir"] = Path.GetRelativePath(outDir, runDir),
        };
        var model = run.Config.ResolvedModel;
        int longest = (run.FinalEval ?? run.Config).Task.LongestSeqLen();
        if (run.Config.Task.DataNote() is { } note) line["data_note"] = note;
        line["num_layers"] = model.NumLayers;
        line["state_floats_per_layer"] = model.StateFloatsPerLayer(longest);
        TrainingOutcome outcome;
        try
        {
            outcome = new Trainer(run.Config, runDir, observer).Run(resume: Checkpoint.List(runDir).Count > 0, cancel);
        }
        catch (TrainingDivergedException e)
        {
            line["status"] = "diverged";
            line["diverged_at_step"] = e.Step;
            line["validation_accuracy"] = 0.0;
            return line;
        }
        if (outcome.Interrupted) throw new OperationCanceledException("sweep interrupted; run the same command again to continue");
        var task = (run.FinalEval ?? run.Config).Task;
        using var kept = run.FinalEval is null && run.Variants is null ? null : LoadKept(run, runDir);
        var final = run.FinalEval is null ? outcome.LastEval! : MqarEvaluator.Evaluate(kept!, task.TestBatches(), task: task);
        line["status"] = "ok";
        line["headline_metric"] = task.HeadlineMetric() ?? MqarEvaluator.TokenAccuracy;
        line["validation_accuracy"] = outcome.TestAccuracy;
        line["validation_exact_match"] = outcome.LastEval?.ExactMatch;
        AddScores(line, final, task);
        if (run.Variants is { } variants) ScoreVariants(line, run, kept!, variants, runDir, outDir, cancel);
        line["parameters"] = outcome.Parameters;
        line["steps"] = outcome.Steps;
        line["reached_target"] = outcome.ReachedTarget;
        line["seconds"] = Math.Round(outcome.ElapsedSeconds, 1);
        line["finished_utc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        return WithoutNonFinite(line);
    }

    /// <summary>
    /// Each test slice's scores, with its bin (needle depth, SORT distance, set order) when the task splits slices
    /// into bins: the report's heatmaps and per-bin tables read it.
    /// </summary>
    static JsonArray SliceLines(EvalResult result, Tasks.ITask task)
    {
        var lines = JsonSerializer.SerializeToNode(result.Slices, NamedFloats)!.AsArray();
        if (task is Tasks.IBinnedTask binned && binned.TestBins() is { } bins && bins.Count == lines.Count)
            for (int i = 0; i < bins.Count; i++)
                lines[i]!["bin"] = new JsonObject
                {
                    ["axis"] = bins[i].Axis,
                    ["lo"] = bins[i].Lo,
                    ["hi"] = bins[i].Hi,
                    ["label"] = bins[i].Name,
                };
        return lines;
    }

    /// <summary>Serialises NaN and ±∞ (a metric with nothing to average) as strings, which <see cref="WithoutNonFinite"/> turns into
    /// null.</summary>
    static readonly JsonSerializerOptions NamedFloats = new(ConfigBinder.WriteOptions)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>A result line with every NaN or ±∞ replaced by null: JSON has no such numbers, and one must not stop the
    /// line from being written (the run would be redone, and fail the same way, forever).</summary>
    static JsonObject WithoutNonFinite(JsonObject line)
    {
        static JsonNode? Clean(JsonNode? node) => node switch
        {
            JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(p.Key, Clean(p.Value)))),
            JsonArray a => new JsonArray(a.Select(Clean).ToArray()),
            JsonValue v when v.TryGetValue<double>(out double d) && !double.IsFinite(d) => null,
            JsonValue v when v.TryGetValue<string>(out string? t) && t is "NaN" or "Infinity" or "-Infinity" => null,
            JsonValue v => JsonNode.Parse(v.ToJsonString()),
            _ => null,
        };
        return (JsonObject)Clean(line)!;
    }

    /// <summary>An evaluation's scores as result fields (accuracy, exact_match, metrics, slices), added to <paramref name="o"/>.</summary>
    static JsonObject AddScores(JsonObject o, EvalResult result, Tasks.ITask task)
    {
        o["accuracy"] = result.Accuracy;
        o["exact_match"] = result.ExactMatch;
        if (result.Metrics is not null) o["metrics"] = JsonSerializer.SerializeToNode(result.Metrics, NamedFloats);
        o["slices"] = SliceLines(result, task);
        return o;
    }

    /// <summary>A run's kept weights: its last checkpoint.</summary>
    static LanguageModel LoadKept(SweepRun run, string runDir)
    {
        var model = run.Config.NewModel();
        TensorIO.LoadStateDict(model, Path.Combine(Checkpoint.List(runDir)[^1], Checkpoint.ModelFile));
        return model;
    }

    /// <summary>The file in a run's folder holding the per-position state norms of its final evaluation.</summary>
    public const string StateNormsFile = "state_norms.json";

    /// <summary>
    /// Scores the kept weights on the final slices under each evaluation variant (<see cref="VariantEvaluation"/>) and
    /// adds them to the result line with the largest state norms per layer; the per-position traces go to
    /// <see cref="StateNormsFile"/> in the run's folder, named by the line.
    /// </summary>
    static void ScoreVariants(JsonObject line, SweepRun run, LanguageModel model, EvalVariants variants, string runDir, string outDir,
        CancellationToken cancel)
    {
        var task = (run.FinalEval ?? run.Config).Task;
        var (scores, norms) = VariantEvaluation.Run(model, run.Config.Task.TestBatches()[0], task, variants, cancel: cancel);
        line["variants"] = new JsonArray(scores.Select(v => (JsonNode)AddScores(new JsonObject { ["name"] = v.Name }, v.Result, task))
            .ToArray());
        string? traces = null;
        if (norms.Traces.Count > 0)
        {
            traces = Path.Combine(runDir, StateNormsFile);
            AtomicFile.WriteAllText(traces, JsonSerializer.Serialize(norms.Traces, NamedFloats));
        }
        line["state_norms"] = new JsonObject
        {
            ["validation_seq_len"] = norms.ValidationSeqLen,
            ["max_at_validation"] = JsonSerializer.SerializeToNode(norms.MaxAtValidation, NamedFloats),
            ["trace_seq_len"] = norms.TraceSeqLen,
            ["trace_examples"] = norms.TraceExamples,
            ["max_at_longest"] = JsonSerializer.SerializeToNode(norms.MaxAtLongest, NamedFloats),
            ["traces"] = traces is null ? null : Path.GetRelativePath(outDir, traces),
        };
    }

    static string Summary(JsonObject r) => r["status"]!.GetValue<string>() == "diverged"
        ? $"diverged at step {r["diverged_at_step"]}"
        : string.Create(CultureInfo.InvariantCulture,
            $"validation {r["validation_accuracy"]!.GetValue<double>():P1}, final accuracy {r["accuracy"]!.GetValue<double>():P1} (exact " +
            $"{r["exact_match"]!.GetValue<double>():P1}), {r["steps"]} steps, {r["seconds"]} s");
}
