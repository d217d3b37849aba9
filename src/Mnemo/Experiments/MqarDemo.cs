using System.Text.Json;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Sweeps;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Experiments;

/// <summary>One demo setting: which mixers, at what width, on which MQAR slices, with which learning rates.</summary>
public sealed record DemoSettings
{
    public required string Name { get; init; }
    public required MixerKind[] Mixers { get; init; }
    public required int DModel { get; init; }
    public required int VocabSize { get; init; }
    public required MqarSlice[] Train { get; init; }
    public required MqarSlice[] Test { get; init; }
    public required double[] LearningRates { get; init; }
    public required int Steps { get; init; }
    public int BatchSize { get; init; } = 64;
    public int EvalEvery { get; init; } = 100;

    static MqarSlice S(int l, int k, int n) => new() { SeqLen = l, NumKvPairs = k, NumExamples = n };

    /// <summary>Fits in ~10 minutes on 2 cores: L = 64 with K = 4 … 16 at d_model 64.</summary>
    public static DemoSettings Default => new()
    {
        Name = "default",
        Mixers = [MixerKind.Attention, MixerKind.LinearAttention, MixerKind.GatedDeltaNet],
        DModel = 64,
        VocabSize = 256,
        Train = [S(64, 4, 8000), S(64, 8, 8000), S(64, 16, 8000)],
        Test = [S(64, 4, 500), S(64, 8, 500), S(64, 16, 500)],
        LearningRates = [1e-3, 3e-3],
        Steps = 800,
    };

    /// <summary>Zoology's grid shrunk to the CPU (docs/tasks.md#mqar): V 512, (L, K) from (64, 4) to (256, 64), four LRs.</summary>
    public static DemoSettings Full => new()
    {
        Name = "full",
        Mixers = [MixerKind.Attention, MixerKind.LinearAttention, MixerKind.GatedDeltaNet],
        DModel = 64,
        VocabSize = 512,
        Train = [S(64, 4, 20000), S(128, 8, 20000), S(256, 16, 20000), S(256, 32, 20000), S(256, 64, 20000)],
        Test = [S(64, 4, 1000), S(128, 8, 1000), S(256, 16, 1000), S(256, 32, 1000), S(256, 64, 1000)],
        LearningRates = [1e-4, 4.6e-4, 2.2e-3, 1e-2],
        Steps = 3000,
    };

    /// <summary>The run config of one (mixer, learning rate) point: 2 layers, no MLP (Zoology's MQAR setting).</summary>
    public RunConfig RunConfig(MixerKind mixer, double lr) => new()
    {
        Description = $"demo {Name}: {mixer} lr {lr:G3}",
        Model = new ModelConfig { Mixer = mixer, DModel = DModel, NumLayers = 2, NumHeads = 2, MlpRatio = 0 },
        Task = new MqarConfig { VocabSize = VocabSize, Train = Train, Test = Test },
        Training = new TrainingConfig
        {
            Steps = Steps, BatchSize = BatchSize, Lr = lr, WarmupSteps = Math.Min(100, Steps / 10), EvalEvery = EvalEvery,
            CheckpointEvery = EvalEvery, TargetAccuracy = 0.99, KeepCheckpoints = 1,
        },
    };
}

/// <summary>The best learning rate's result for one mixer (Zoology reports the max over learning rates).</summary>
public sealed record DemoModelResult(
    string Model, double BestLr, double Accuracy, IReadOnlyList<SliceAccuracy> Slices, IReadOnlyDictionary<string, double> AccuracyByLr,
    long StateFloatsPerLayer, long Parameters, long Steps, double Seconds, string RunDir);

/// <summary>
/// Trains each mixer at each learning rate on MQAR and reports the best per mixer: results.json, accuracy.png
/// (accuracy per slice), loss.png (loss curves of the best runs). Each run lives in its own folder and resumes, so an
/// interrupted demo picks up where it stopped.
/// </summary>
public static class MqarDemo
{
    public static IReadOnlyList<DemoModelResult> Run(DemoSettings settings, string outDir,
        Func<RunConfig, string, ITrainingObserver?> observerFor, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(outDir);
        var results = new List<DemoModelResult>();
        foreach (var mixer in settings.Mixers)
        {
            var runs = new List<(double Lr, TrainingOutcome Outcome, RunConfig Config)>();
            foreach (double lr in settings.LearningRates)
            {
                var config = settings.RunConfig(mixer, lr);
                string runDir = Path.Combine(outDir, "runs", $"{Json(mixer)}-lr{lr:G3}");
                var outcome = new Trainer(config, runDir, observerFor(config, runDir))
                    .Run(resume: Checkpoint.List(runDir).Count > 0, cancel);
                if (outcome.Interrupted) throw new OperationCanceledException("demo interrupted; run it again to continue");
                runs.Add((lr, outcome, config));
            }
            var best = BestLearningRate.Pick(runs, runs[0].Config.ActiveTask.ReportedScore(), r => r.Lr, r => r.Outcome);
            results.Add(new DemoModelResult(
                Json(mixer), best.Lr, best.Outcome.TestAccuracy, best.Outcome.LastEval!.Slices,
                runs.ToDictionary(r => r.Lr.ToString("G3"), r => r.Outcome.TestAccuracy),
                best.Config.ResolvedModel.StateFloatsPerLayer(settings.Test.Max(s => s.SeqLen)), best.Outcome.Parameters,
                best.Outcome.Steps, best.Outcome.ElapsedSeconds, best.Outcome.RunDir));
        }
        AtomicFile.WriteAllText(Path.Combine(outDir, "results.json"),
            JsonSerializer.Serialize(new { settings = settings.Name, models = results }, ConfigBinder.WriteOptions));
        DemoPlots.Accuracy(results, settings.Test, Path.Combine(outDir, "accuracy.png"));
        DemoPlots.Loss(results.ToDictionary(r => r.Model, r => Trainer.LossCurve(r.RunDir)), Path.Combine(outDir, "loss.png"));
        return results;
    }

    static string Json(MixerKind m) => JsonNamingPolicy.SnakeCaseLower.ConvertName(m.ToString());
}
