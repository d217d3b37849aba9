using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tasks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Training;

/// <summary>What the trainer reports as it goes. The CLI turns these into a progress bar or log lines.</summary>
public interface ITrainingObserver
{
    void Started(long startStep, long totalSteps, string runDir, LanguageModel model) { }
    void Stepped(StepMetrics metrics) { }
    void Evaluated(long step, EvalResult result) { }
    void Saved(long step, string checkpointDir) { }
    void Info(string message) { }
}

public sealed record StepMetrics(long Step, double Loss, double TrainAccuracy, double Lr, double GradNorm, double TokensPerSecond,
    double ElapsedSeconds);

public sealed record TrainingOutcome(long Steps, double TestAccuracy, EvalResult? LastEval, bool ReachedTarget, bool Interrupted,
    double ElapsedSeconds, string RunDir, long Parameters);

/// <summary>
/// Trains a language model on a recall task (MQAR or passkey, see <see cref="RunConfig.Task"/>): AdamW with warm-up + cosine,
/// gradient clipping, evaluation every N steps with early stop at a target accuracy, metrics as JSON lines, periodic checkpoints, and exact
/// resume (the batch of a step depends only on the step; optimizer moments, step counts and the generator state are restored).
/// </summary>
public sealed class Trainer
{
    public const string MetricsFile = "metrics.jsonl";

    /// <summary>(step, loss) pairs from a run's metrics.jsonl.</summary>
    public static List<(double Step, double Loss)> LossCurve(string runDir) =>
        File.ReadLines(Path.Combine(runDir, MetricsFile))
            .Select(l => JsonNode.Parse(l)!)
            .Where(n => n["loss"] is not null)
            .Select(n => (n["step"]!.GetValue<double>(), n["loss"]!.GetValue<double>()))
            .ToList();

    readonly RunConfig _config;
    readonly string _runDir;
    readonly ITrainingObserver _observer;

    public Trainer(RunConfig config, string runDir, ITrainingObserver? observer = null)
    {
        _config = config;
        _runDir = runDir;
        _observer = observer ?? new NullObserver();
    }

    sealed class NullObserver : ITrainingObserver;

    public TrainingOutcome Run(bool resume, CancellationToken cancel = default)
    {
        var t = _config.Training;
        TorchRuntime.Initialise(t.Threads);
        Directory.CreateDirectory(_runDir);
        Checkpoint.RemoveStale(_runDir);

        string? from = resume ? Checkpoint.List(_runDir).LastOrDefault() : null;
        if (!resume && Checkpoint.List(_runDir).Count > 0)
            throw new MnemoException($"{_runDir} already holds checkpoints; pass --resume to continue that run, or choose another --out");
        string configFile = Path.Combine(_runDir, Checkpoint.ConfigFile);
        // A run exists once its config does (written first, below); resuming anything else would silently start a new run.
        if (resume && from is null && !File.Exists(configFile))
            throw new MnemoException($"{_runDir}: nothing to resume (no {Checkpoint.ConfigFile} and no checkpoint); " +
                $"start the run without --resume");
        if (from is null)
        {
            // The config before anything else, so a run killed at any moment can be resumed (from step 0 before its first
            // checkpoint) with the config it started with.
            AtomicFile.WriteAllText(configFile, _config.ToJson());
            File.Delete(Path.Combine(_runDir, MetricsFile));
            if (resume) _observer.Info($"{_runDir} has no checkpoint yet; starting it again from step 0");
        }

        if (t.MemoryCheck) MemoryEstimate.Check(_config.ResolvedModel, MemoryEstimate.AvailableBytes());
        // Data first (its own seeds), then the model from the training seed, so weights don't depend on data size.
        var task = _config.Task;
        if (task.Readout() == Readout.Compression && task.CompressionDecoderTargets() < task.LongestSeqLen())
            throw new ConfigException($"task ({_config.TaskKind}): the compression readout decodes up to {task.LongestSeqLen()} " +
                $"targets; set task.compression_targets to at least that (now {task.CompressionDecoderTargets()})");
        var train = task.TrainBatches();
        var test = task.TestBatches();
        var schedule = new BatchSchedule(train, t.BatchSize, t.Seed);

        TorchRuntime.Seed(t.Seed);
        var model = _config.NewModel();
        if (from is null && t.InitFrom.Length > 0)
        {
            string source;
            try { source = Checkpoint.LoadWeightsInto(model, t.InitFrom); }
            catch (MnemoException e) when (e is not ConfigException)
            {
                throw new ConfigException($"training.init_from: {e.Message}");
            }
            _observer.Info($"weights initialised from {source}");
        }
        var optimizer = CreateOptimizer(model, t);

        var state = new TrainerState();
        if (from is not null)
        {
            TensorIO.LoadStateDict(model, Path.Combine(from, Checkpoint.ModelFile));
            Checkpoint.LoadOptimizer(optimizer, from);
            state = Checkpoint.ReadState(from);
            if (state.RngState.Length > 0)
            {
                using var rng = tensor(Convert.FromBase64String(state.RngState));
                torch.random.set_rng_state(rng);
            }
            TruncateMetrics(state.Step);
            _observer.Info($"resumed from {from} at step {state.Step}");
        }

        _observer.Started(state.Step, t.Steps, _runDir, model);
        if (t.Precision == Precision.Bf16)                                       // measured: the flags can promise too much
        {
            double speedup = MatmulPeak.Bf16Speedup();
            if (speedup < 1) _observer.Info($"training.precision bf16: {CpuFeatures.Read().Bf16Verdict(speedup)}");
        }
        using var precision = MixedPrecision.Enter(t.Precision);                   // training steps and evaluations
        using var metrics = new StreamWriter(Path.Combine(_runDir, MetricsFile), append: true);
        var clock = Stopwatch.StartNew();
        var sinceCheckpoint = Stopwatch.StartNew();      // a crash loses at most checkpoint_minutes of work
        double elapsedBefore = state.ElapsedSeconds;
        long step = state.Step;
        EvalResult? lastEval = null;
        bool reached = false, interrupted = false;
        var decay = DecayedParameters(model).ToHashSet();
        var memory = new ResidentGuard(ResidentGuard.TrainingSlack);

        model.train();
        if (state.Finished) _observer.Info("this run had already finished; nothing to do");
        while (!state.Finished && step < t.Steps)
        {
            if (cancel.IsCancellationRequested) { interrupted = true; break; }
            var stepClock = Stopwatch.StartNew();
            double lr = LearningRateSchedule.At(step, t.Lr, t.WarmupSteps, t.Steps, t.MinLrRatio);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;

            StepOutcome outcome;
            using (GcQuiet.Enter())                                                  // see GcQuiet: no GC mid-call
            using (NewDisposeScope())
            {
                var (slice, rows) = schedule.At(step);
                var (inputs, labels) = MqarEvaluator.ToTensors(slice, rows);
                outcome = TrainingStep.Run(model, optimizer, inputs, labels, task.Readout(), t.GradClip);
            }
            var (loss, accuracy, gradNorm, tokens) = (outcome.Loss, outcome.Accuracy, outcome.GradNorm, outcome.Tokens);
            memory.Check();
            step++;
            double elapsed = elapsedBefore + clock.Elapsed.TotalSeconds;
            var m = new StepMetrics(step, loss, accuracy, lr, gradNorm, tokens / stepClock.Elapsed.TotalSeconds, elapsed);
            string advice = $"lower training.lr (now {t.Lr}) or raise training.warmup_steps";
            if (!double.IsFinite(loss))
                throw new TrainingDivergedException(step, $"training diverged at step {step} (loss {loss}); {advice}");
            state = Smooth(state, loss, step);
            if (t.DivergenceRatio > 0 && state.InitialLoss > 0 && state.SmoothedLoss > t.DivergenceRatio * state.InitialLoss)
                throw new TrainingDivergedException(step,
                    $"training diverged at step {step}: the loss smoothed over ~10 steps is {state.SmoothedLoss:G4}, more than " +
                    $"{t.DivergenceRatio:G3}× the first step's {state.InitialLoss:G4} (training.divergence_ratio); {advice}");
            _observer.Stepped(m);
            if (step % t.LogEvery == 0)
                WriteLine(metrics, new JsonObject
                {
                    ["step"] = step, ["loss"] = loss, ["train_accuracy"] = accuracy, ["lr"] = lr,
                    ["grad_norm"] = Finite(gradNorm), ["tokens_per_second"] = m.TokensPerSecond, ["elapsed_seconds"] = elapsed
                });

            bool last = step == t.Steps;
            if (step % t.EvalEvery == 0 || last)
            {
                lastEval = MqarEvaluator.Evaluate(model, test, task: task);
                _observer.Evaluated(step, lastEval);
                WriteLine(metrics, EvalLine(step, lastEval, elapsedBefore + clock.Elapsed.TotalSeconds));
                reached = t.TargetAccuracy > 0 && lastEval.Accuracy >= t.TargetAccuracy;
                state = state with { BestAccuracy = Math.Max(state.BestAccuracy, lastEval.Accuracy) };
            }
            bool done = last || reached;
            bool due = t.CheckpointMinutes > 0 && sinceCheckpoint.Elapsed.TotalMinutes >= t.CheckpointMinutes;
            if (step % t.CheckpointEvery == 0 || done || due || cancel.IsCancellationRequested)
            {
                sinceCheckpoint.Restart();
                using var rng = torch.random.get_rng_state();
                state = state with
                {
                    Step = step,
                    Finished = done,
                    ReachedTarget = reached,
                    ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds,
                    RngState = Convert.ToBase64String(rng.bytes.ToArray()),
                };
                // Never a checkpoint that would load as garbage: the loss was finite, but the update after it may not be.
                if (NonFiniteParameter(model) is { } bad)
                    throw new TrainingDivergedException(step,
                        $"training diverged at step {step}: parameter {bad} is no longer finite after the update (no checkpoint " +
                        $"written; the newest is from before); lower training.lr (now {t.Lr}) or check training.beta1/beta2");
                _observer.Saved(step, Checkpoint.Save(_runDir, _config, model, optimizer, state, t.KeepCheckpoints));
            }
            if (done) break;
        }
        lastEval ??= MqarEvaluator.Evaluate(model, test, task: task);
        reached |= state.Finished && state.ReachedTarget;                       // a finished run resumed after its last checkpoint
        return new TrainingOutcome(step, lastEval.Accuracy, lastEval, reached, interrupted, elapsedBefore + clock.Elapsed.TotalSeconds,
            _runDir, model.ParameterCount());
    }

    static double? Finite(double d) => double.IsFinite(d) ? d : null;

    /// <summary>Folds a step's loss into its moving average; the first step's loss is the divergence reference. A run
    /// resumed from a checkpoint older than the check has no reference (0) and is not checked.</summary>
    static TrainerState Smooth(TrainerState s, double loss, long step) =>
        step == 1 ? s with { InitialLoss = loss, SmoothedLoss = loss } : s with { SmoothedLoss = 0.9 * s.SmoothedLoss + 0.1 * loss };

    /// <summary>The first parameter holding a NaN or an infinity, or null.</summary>
    static string? NonFiniteParameter(nn.Module model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return model.named_parameters().FirstOrDefault(p => !isfinite(p.parameter).all().item<bool>()).name;
    }

    static JsonObject EvalLine(long step, EvalResult r, double elapsed)
    {
        var slices = new JsonArray();
        foreach (var s in r.Slices)
        {
            var line = new JsonObject
            {
                ["seq_len"] = s.SeqLen,
                ["num_kv_pairs"] = s.NumKvPairs,
                ["examples"] = s.Examples,
                ["accuracy"] = s.Accuracy,
                ["exact_match"] = s.ExactMatch,
            };
            if (s.Metrics is not null) line["metrics"] = MetricsObject(s.Metrics);
            slices.Add(line);
        }
        var result = new JsonObject { ["step"] = step, ["test_accuracy"] = r.Accuracy, ["slices"] = slices, ["elapsed_seconds"] = elapsed };
        if (r.Metrics is not null) result["metrics"] = MetricsObject(r.Metrics);
        return result;
    }

    static JsonObject MetricsObject(IReadOnlyDictionary<string, double> metrics)
    {
        var o = new JsonObject();
        foreach (var (name, value) in metrics) o[name] = Finite(value);
        return o;
    }

    static void WriteLine(StreamWriter w, JsonObject line)
    {
        w.WriteLine(line.ToJsonString());
        w.Flush(); // a killed run keeps every line it reported
    }

    /// <summary>Drops metric lines past the checkpoint a run resumes from, so the file reads as one clean run.</summary>
    void TruncateMetrics(long step)
    {
        string path = Path.Combine(_runDir, MetricsFile);
        if (!File.Exists(path)) return;
        var keep = File.ReadLines(path).Where(line =>
        {
            try { return JsonNode.Parse(line)?["step"]?.GetValue<long>() <= step; }
            catch (JsonException) { return false; } // a line cut short by the kill
        }).ToList();
        AtomicFile.WriteAllText(path, keep.Count == 0 ? "" : string.Join('\n', keep) + "\n");
    }

    /// <summary>Matrices of linear layers get weight decay; embeddings, norms and conv filters do not.</summary>
    static IEnumerable<Parameter> DecayedParameters(nn.Module model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad && p.parameter.dim() == 2 && !p.name.Contains("embeddings"))
            .Select(p => p.parameter);

    /// <summary>AdamW over the trainable parameters, with weight decay on the matrices only (any model).</summary>
    internal static AdamW CreateOptimizer(nn.Module model, TrainingConfig t)
    {
        var decay = DecayedParameters(model).ToList();
        var rest = model.parameters().Where(p => p.requires_grad && !decay.Contains(p)).ToList();
        var groups = new List<AdamW.ParamGroup>
        {
            new(decay, new AdamW.Options { weight_decay = t.WeightDecay }),
            new(rest, new AdamW.Options { weight_decay = 0 }),
        };
        return optim.AdamW(groups, lr: t.Lr, beta1: t.Beta1, beta2: t.Beta2, weight_decay: t.WeightDecay);
    }
}

/// <summary>The loss became NaN or infinite: the run cannot continue (a sweep records it and moves on).</summary>
public sealed class TrainingDivergedException(long step, string message) : MnemoException(message)
{
    public long Step { get; } = step;
}
