using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Tasks;
using Mnemo.Training;
using TorchSharp;

namespace Mnemo.Tests.Training;

[Collection(TorchCollection.Name)]
public class TrainerTests
{
    /// <summary>A run small enough for a unit test: two slices, one layer, d 16.</summary>
    public static RunConfig Tiny(int steps = 12) => new()
    {
        Model = new ModelConfig { DModel = 16, NumHeads = 2, NumLayers = 1, MlpRatio = 0 },
        Task = new MqarConfig
        {
            VocabSize = 64,
            Train = [new() { SeqLen = 16, NumKvPairs = 2, NumExamples = 40 }, new() { SeqLen = 32, NumKvPairs = 4, NumExamples = 24 }],
            Test = [new() { SeqLen = 16, NumKvPairs = 2, NumExamples = 16 }, new() { SeqLen = 32, NumKvPairs = 4, NumExamples = 8 }],
        },
        Training = new TrainingConfig
        {
            Steps = steps, BatchSize = 8, Lr = 1e-2, WarmupSteps = 2, EvalEvery = 4, CheckpointEvery = 4,
            LogEvery = 1, TargetAccuracy = 0, KeepCheckpoints = 100, Threads = 1,
        },
    };

    /// <summary>Metric lines without the wall-clock fields, which differ between any two runs.</summary>
    public static List<string> Metrics(string runDir) => File.ReadAllLines(Path.Combine(runDir, Trainer.MetricsFile))
        .Select(line =>
        {
            var o = JsonNode.Parse(line)!.AsObject();
            o.Remove("elapsed_seconds");
            o.Remove("tokens_per_second");
            return o.ToJsonString();
        }).ToList();

    sealed class CancelAt(long step, CancellationTokenSource cts) : ITrainingObserver
    {
        public void Stepped(StepMetrics m)
        {
            if (m.Step == step) cts.Cancel();
        }
    }

    [Fact]
    public void Same_seed_gives_the_same_metrics()
    {
        using var a = new Tmp.Dir();
        using var b = new Tmp.Dir();
        new Trainer(Tiny(), a.Path).Run(resume: false);
        new Trainer(Tiny(), b.Path).Run(resume: false);
        Assert.Equal(Metrics(a.Path), Metrics(b.Path));
        Assert.Equal(12 + 3, Metrics(a.Path).Count); // 12 step lines + evaluations at 4, 8, 12
    }

    [Fact]
    public void Interrupted_and_resumed_run_equals_an_uninterrupted_one()
    {
        using var whole = new Tmp.Dir();
        using var split = new Tmp.Dir();
        var full = new Trainer(Tiny(), whole.Path).Run(resume: false);

        using var cts = new CancellationTokenSource();
        var first = new Trainer(Tiny(), split.Path, new CancelAt(6, cts)).Run(resume: false, cts.Token);
        Assert.True(first.Interrupted);
        Assert.Equal(6, first.Steps);
        var second = new Trainer(Tiny(), split.Path).Run(resume: true);

        Assert.Equal(Metrics(whole.Path), Metrics(split.Path));
        Assert.Equal(full.TestAccuracy, second.TestAccuracy);
        var a = SafeTensors.Read(Path.Combine(Checkpoint.List(whole.Path)[^1], Checkpoint.ModelFile));
        var b = SafeTensors.Read(Path.Combine(Checkpoint.List(split.Path)[^1], Checkpoint.ModelFile));
        Assert.All(a.Tensors, t => Assert.True(t.Data.Span.SequenceEqual(b[t.Name].Data.Span), t.Name));
    }

    [Fact]
    public void Metric_lines_written_after_the_checkpoint_are_dropped_on_resume()
    {
        using var dir = new Tmp.Dir();
        new Trainer(Tiny(8), dir.Path).Run(resume: false);
        // Simulate a crash after step 8's lines but before its checkpoint: remove that checkpoint.
        Directory.Delete(Checkpoint.List(dir.Path)[^1], recursive: true);
        File.AppendAllText(Path.Combine(dir.Path, Trainer.MetricsFile), "{\"step\": 9, \"loss\": 1}\n{\"step\": 10, \"lo");
        new Trainer(Tiny(8), dir.Path).Run(resume: true);
        var steps = Metrics(dir.Path).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<long>()).ToList();
        Assert.Equal(steps.Order(), steps);
        Assert.Equal(8, steps[^1]);
        Assert.Equal(8 + 2, steps.Count);
    }

    [Fact]
    public void Resuming_a_folder_without_a_run_is_refused_and_writes_nothing()
    {
        using var dir = new Tmp.Dir();
        var e = Assert.Throws<MnemoException>(() => new Trainer(Tiny(4), dir.Path).Run(resume: true));
        Assert.Contains("nothing to resume", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void A_run_killed_before_its_first_checkpoint_resumes_from_step_0_to_the_same_metrics()
    {
        using var whole = new Tmp.Dir();
        using var killed = new Tmp.Dir();
        new Trainer(Tiny(4), whole.Path).Run(resume: false);
        // What a kill right after the start leaves: the config (written before anything else) and a partial log.
        File.WriteAllText(Path.Combine(killed.Path, Checkpoint.ConfigFile), Tiny(4).ToJson());
        File.WriteAllText(Path.Combine(killed.Path, Trainer.MetricsFile), "{\"step\": 1, \"loss\": 9\n");
        new Trainer(Tiny(4), killed.Path).Run(resume: true);
        Assert.Equal(Metrics(whole.Path), Metrics(killed.Path));
    }

    [Fact]
    public void A_loss_that_climbs_far_above_the_untrained_models_stops_as_diverged()
    {
        // The climb is made, not hoped for: after step 3 the output weights are scaled 1000×, so every logit gap is 1000×
        // and the loss jumps far above ln V while every number stays finite (a huge learning rate would also climb, but
        // whether it overflows first depends on the CPU's kernels).
        using var dir = new Tmp.Dir();
        var e = Assert.Throws<TrainingDivergedException>(() => new Trainer(Tiny(12), dir.Path, new InflateAt(3, 1000)).Run(resume: false));
        Assert.Contains("training.divergence_ratio", e.Message);
        Assert.True(e.Step is > 3 and < 12, $"stopped at step {e.Step}");
        // Off, the same run goes on to its last step without a NaN, the case the check exists for.
        var off = Tiny(12) with { Training = Tiny(12).Training with { DivergenceRatio = 0 } };
        using var dir2 = new Tmp.Dir();
        Assert.Equal(12, new Trainer(off, dir2.Path, new InflateAt(3, 1000)).Run(resume: false).Steps);
    }

    /// <summary>Scales the output weights (the head, or the tied embeddings) after the given step's update.</summary>
    sealed class InflateAt(long step, double factor) : ITrainingObserver
    {
        LanguageModel? _model;
        public void Started(long startStep, long totalSteps, string runDir, LanguageModel model) => _model = model;
        public void Stepped(StepMetrics m)
        {
            if (m.Step != step) return;
            using var noGrad = torch.no_grad();
            var head = _model!.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            (head.GetValueOrDefault("lm_head.weight") ?? head["model.embeddings.weight"]).mul_(factor);
        }
    }

    /// <summary>Poisons one weight with NaN after the given step's update, as an unstable optimizer would.</summary>
    sealed class PoisonAt(long step) : ITrainingObserver
    {
        LanguageModel? _model;
        public void Started(long startStep, long totalSteps, string runDir, LanguageModel model) => _model = model;
        public void Stepped(StepMetrics m)
        {
            if (m.Step != step) return;
            using var noGrad = torch.no_grad();
            _model!.parameters().First().fill_(double.NaN);
        }
    }

    [Fact]
    public void Non_finite_weights_are_never_checkpointed_nor_loaded()
    {
        using var dir = new Tmp.Dir();
        var e = Assert.Throws<TrainingDivergedException>(() => new Trainer(Tiny(12), dir.Path, new PoisonAt(8)).Run(resume: false));
        Assert.Contains("no longer finite", e.Message);
        Assert.Equal(["step-00000004"], Checkpoint.List(dir.Path).Select(Path.GetFileName));    // step 8's was not written

        // A file that holds them anyway (written by hand here) is refused by every loader.
        var model = new LanguageModel(Tiny().ResolvedModel);
        using (torch.no_grad()) model.parameters().Last().fill_(double.PositiveInfinity);
        TensorIO.SaveStateDict(model, dir["bad.safetensors"]);
        var load = Assert.Throws<MnemoException>(() => TensorIO.LoadStateDict(new LanguageModel(Tiny().ResolvedModel),
            dir["bad.safetensors"]));
        Assert.Contains("holds NaN or infinite values", load.Message);
    }

    [Theory]
    [InlineData("relabelled", "tensor \"exp_avg_sq.0\" is I32, expected F32")]
    [InlineData("widened", "tensor \"exp_avg.1\" is F64, expected F32")]
    [InlineData("extra", "unexpected tensor \"momentum.0\"")]
    [InlineData("negative", "tensor \"exp_avg_sq.2\" has negative entries")]
    [InlineData("nan", "tensor \"exp_avg.0\" holds NaN or infinite values")]
    public void The_optimizer_state_reader_is_as_strict_as_the_model_reader(string change, string expected)
    {
        using var dir = new Tmp.Dir();
        new Trainer(Tiny(4), dir.Path).Run(resume: false);
        string file = Path.Combine(Checkpoint.List(dir.Path).Single(), Checkpoint.OptimizerFile);
        var read = SafeTensors.Read(file);
        var entries = read.Tensors.Select(e => e.Name switch
        {
            "exp_avg_sq.0" when change == "relabelled" => e with { DType = SafeTensorDType.I32 },
            "exp_avg.1" when change == "widened" => TensorIO.ToEntry(e.Name, TensorIO.ToTensor(e).to(torch.float64)),
            "exp_avg_sq.2" when change == "negative" => TensorIO.ToEntry(e.Name, TensorIO.ToTensor(e) - 1),
            "exp_avg.0" when change == "nan" => TensorIO.ToEntry(e.Name, TensorIO.ToTensor(e) * double.NaN),
            _ => e,
        }).ToList();
        if (change == "extra") entries.Add(TensorIO.ToEntry("momentum.0", torch.zeros(3)));
        SafeTensors.Write(file, entries, read.Metadata);
        var e = Assert.Throws<MnemoException>(() => new Trainer(Tiny(8), dir.Path).Run(resume: true));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_finished_run_resumed_later_still_says_it_reached_the_target()
    {
        using var dir = new Tmp.Dir();
        var easy = Tiny(12) with { Training = Tiny().Training with { TargetAccuracy = 1e-6 } };
        var first = new Trainer(easy, dir.Path).Run(resume: false);
        Assert.True(first.ReachedTarget);
        Assert.Equal(4, first.Steps);
        // What a sweep worker killed after the final checkpoint, before its result line, does when it comes back.
        var again = new Trainer(easy, dir.Path).Run(resume: true);
        Assert.True(again.ReachedTarget);
        Assert.Equal(first.TestAccuracy, again.TestAccuracy);
    }

    [Fact]
    public void Checkpoints_are_also_written_by_elapsed_time()
    {
        using var dir = new Tmp.Dir();
        var timed = Tiny(6) with { Training = Tiny().Training with { Steps = 6, CheckpointEvery = 1000, CheckpointMinutes = 1e-9 } };
        new Trainer(timed, dir.Path).Run(resume: false);
        Assert.Equal(6, Checkpoint.List(dir.Path).Count);                         // every step is "due" at 1e-9 minutes
        Assert.Equal(10, new TrainingConfig().CheckpointMinutes);
    }

    [Fact]
    public void A_model_that_cannot_fit_is_refused_before_anything_is_allocated()
    {
        var huge = new ModelConfig { VocabSize = 1 << 20, DModel = 16384, NumHeads = 2, NumLayers = 2 };
        Assert.Equal(16L * 19_327_352_832, MemoryEstimate.TrainingBytesLowerBound(huge));      // 16 B × (V·d + 2·4·d²)
        var e = Assert.Throws<ConfigException>(() => MemoryEstimate.Check(huge, available: 24_000_000_000));
        Assert.Contains("at least 309.2 GB", e.Message);
        Assert.Contains("24.0 GB is available", e.Message);
        Assert.Contains("training.memory_check=false", e.Message);
        MemoryEstimate.Check(Tiny().ResolvedModel, available: 24_000_000_000);                   // fits: no error
        MemoryEstimate.Check(huge, available: null);                                             // unknown: no check

        // Through the trainer: refused with nothing written but the run's config.
        using var dir = new Tmp.Dir();
        var run = Tiny(4) with
        {
            Model = Tiny().Model with { DModel = 16384, NumHeads = 2 },
            Task = (MqarConfig)Tiny().Task with { VocabSize = 1 << 20 },
        };
        if (MemoryEstimate.AvailableBytes() is { } have && have < MemoryEstimate.TrainingBytesLowerBound(run.ResolvedModel))
            Assert.Throws<ConfigException>(() => new Trainer(run, dir.Path).Run(resume: false));
    }

    [Fact]
    public void Starting_over_an_existing_run_is_refused()
    {
        using var dir = new Tmp.Dir();
        new Trainer(Tiny(4), dir.Path).Run(resume: false);
        var e = Assert.Throws<MnemoException>(() => new Trainer(Tiny(4), dir.Path).Run(resume: false));
        Assert.Contains("--resume", e.Message);
    }

    [Fact]
    public void A_corrupt_checkpoint_is_a_clear_error_not_a_crash()
    {
        using var dir = new Tmp.Dir();
        new Trainer(Tiny(4), dir.Path).Run(resume: false);
        string model = Path.Combine(Checkpoint.List(dir.Path)[^1], Checkpoint.ModelFile);
        var bytes = File.ReadAllBytes(model);
        File.WriteAllBytes(model, bytes[..(bytes.Length - 10)]);
        var e = Assert.Throws<SafeTensorsFormatException>(() => new Trainer(Tiny(8), dir.Path).Run(resume: true));
        Assert.Contains(model, e.Message);
    }

    [Fact]
    public void Checkpoints_are_pruned_and_stale_temp_folders_removed()
    {
        using var dir = new Tmp.Dir();
        string stale = Path.Combine(Checkpoint.Folder(dir.Path), ".tmp-deadbeef");
        Directory.CreateDirectory(stale);
        new Trainer(Tiny(12) with { Training = Tiny().Training with { KeepCheckpoints = 2 } }, dir.Path).Run(resume: false);
        Assert.False(Directory.Exists(stale));
        Assert.Equal(["step-00000008", "step-00000012"], Checkpoint.List(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Early_stop_at_the_target_accuracy()
    {
        using var dir = new Tmp.Dir();
        // Target 0.0 disables early stop, so any positive accuracy target ≤ the first evaluation stops at step 4.
        var config = Tiny(12) with { Training = Tiny().Training with { TargetAccuracy = 1e-9 } };
        var outcome = new Trainer(config, dir.Path).Run(resume: false);
        if (outcome.LastEval!.Accuracy > 0)
        {
            Assert.True(outcome.ReachedTarget);
            Assert.Equal(4, outcome.Steps);
            Assert.True(Checkpoint.ReadState(Checkpoint.List(dir.Path)[^1]).Finished);
        }
        else Assert.Equal(12, outcome.Steps);
    }

    [Fact]
    public void Batch_schedule_visits_every_example_once_per_epoch_and_depends_only_on_the_step()
    {
        var task = (MqarConfig)Tiny().Task;
        var slices = Mqar.GenerateAll(task, task.Train, 1);
        var schedule = new BatchSchedule(slices, 8, seed: 3);
        Assert.Equal(5 + 3, schedule.BatchesPerEpoch);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var seen = new HashSet<(int, int)>();
            for (int s = 0; s < schedule.BatchesPerEpoch; s++)
            {
                var (slice, rows) = schedule.At(epoch * schedule.BatchesPerEpoch + s);
                foreach (int r in rows) Assert.True(seen.Add((slice.SeqLen, r)));
            }
            Assert.Equal(40 + 24, seen.Count);
        }
        var fresh = new BatchSchedule(slices, 8, seed: 3);
        Assert.Equal(schedule.At(13).Rows, fresh.At(13).Rows);   // no hidden state: step 13 first, same answer
        string Epoch(int e) => string.Join('|', Enumerable.Range(0, schedule.BatchesPerEpoch)
            .Select(s => schedule.At(e * schedule.BatchesPerEpoch + s)).Select(b => $"{b.Slice.SeqLen}:{string.Join(',', b.Rows)}"));
        Assert.NotEqual(Epoch(0), Epoch(1));                       // each epoch is reshuffled
    }

    sealed class LiveTensors : ITrainingObserver
    {
        public Dictionary<long, long> AtStep { get; } = [];
        public void Stepped(StepMetrics m) => AtStep[m.Step] = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
    }

    [Fact]
    public void Live_tensor_count_does_not_grow_with_steps()
    {
        using var dir = new Tmp.Dir();
        var live = new LiveTensors();
        new Trainer(Tiny(30), dir.Path, live).Run(resume: false);
        // Steps 5 and 29 sit at the same point of the cycle (after an evaluation and a checkpoint).
        Assert.Equal(live.AtStep[5], live.AtStep[29]);
    }

    [Fact]
    public void Learning_rate_warms_up_then_decays_to_the_floor()
    {
        Assert.Equal(0.1, LearningRateSchedule.At(0, 1.0, 10, 100, 0.1), 12);
        Assert.Equal(1.0, LearningRateSchedule.At(9, 1.0, 10, 100, 0.1), 12);
        Assert.Equal(1.0, LearningRateSchedule.At(10, 1.0, 10, 100, 0.1), 12);
        Assert.Equal(0.55, LearningRateSchedule.At(55, 1.0, 10, 100, 0.1), 12);
        Assert.Equal(0.1, LearningRateSchedule.At(100, 1.0, 10, 100, 0.1), 12);
    }
}
