using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Tasks;

namespace Mnemo.Tests.Experiments;

[Collection(TorchCollection.Name)]
public class ExtrapolationTests
{
    [Fact]
    public void Quick_run_writes_every_task_model_and_length_and_resumes_without_retraining()
    {
        using var dir = new Tmp.Dir();
        var settings = ExtrapolationSettings.Quick;   // what the bundled extrapolate-quick sweep trains (tested below)
        var sweep = Extrapolation.Sweep(quick: true);
        var lines = new List<string>();
        var cells = Extrapolation.Run(sweep, dir.Path, _ => null, lines.Add)!;

        var json = JsonNode.Parse(File.ReadAllText(dir[Extrapolation.ResultsFile]))!;
        Assert.Equal(settings.TrainLength, json["train_length"]!.GetValue<int>());
        Assert.Equal(settings.EvalLengths, json["eval_lengths"]!.AsArray().Select(l => l!.GetValue<int>()));
        var stored = json["cells"]!.AsArray();
        Assert.Equal(settings.Tasks.Length * settings.Mixers.Length, stored.Count);
        foreach (string task in new[] { "mqar", "passkey" })
            foreach (string model in settings.Mixers
                .Select(m => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(m.ToString())))
            {
                var cell = stored.Single(c => c!["task"]!.GetValue<string>() == task && c["model"]!.GetValue<string>() == model)!;
                var lengths = cell["lengths"]!.AsArray();
                Assert.Equal(settings.EvalLengths, lengths.Select(l => l!["seq_len"]!.GetValue<int>()));
                Assert.Equal(settings.EvalFactors, lengths.Select(l => l!["factor"]!.GetValue<int>()));
                foreach (var l in lengths)
                {
                    Assert.Equal(settings.EvalExamples, l!["examples"]!.GetValue<long>());
                    Assert.InRange(l["accuracy"]!.GetValue<double>(), 0, 1);
                    Assert.InRange(l["exact_match"]!.GetValue<double>(), 0, l["accuracy"]!.GetValue<double>());
                }
                Assert.Equal(settings.LearningRates.Length, cell["validation_accuracy_by_lr"]!.AsObject().Count);
                Assert.Contains(cell["best_lr"]!.GetValue<double>(), settings.LearningRates);
                Assert.True(cell["parameters"]!.GetValue<long>() > 0);
                Assert.True(Directory.Exists(cell["run_dir"]!.GetValue<string>()));
            }
        Assert.True(new FileInfo(dir[Extrapolation.PlotFile]).Length > 1000);
        // One progress line per cell, after the sweep's own lines.
        Assert.Equal(cells.Count, lines.Count(l => l.Contains(" (lr ", StringComparison.Ordinal)));

        // Equal size: the same d_model, layers and heads for every mixer of a task.
        foreach (var mixer in settings.Mixers)
        {
            var m = settings.RunConfig(ExtrapolationTask.Passkey, mixer, 1e-3).Model;
            Assert.Equal((settings.DModel, settings.NumLayers, settings.NumHeads), (m.DModel, m.NumLayers, m.NumHeads));
            Assert.True(m.MaxPositions >= settings.EvalLengths.Max());
        }

        // Every run has finished: a second call trains nothing and scores the same weights the same way.
        var again = new List<string>();
        var cellsAgain = Extrapolation.Run(sweep, dir.Path, _ => null, again.Add)!;
        Assert.Contains(again, l => l.Contains("8 already done", StringComparison.Ordinal));
        Assert.DoesNotContain(again, l => l.StartsWith("[1/", StringComparison.Ordinal));
        Assert.Equal(cells.SelectMany(c => c.Lengths), cellsAgain.SelectMany(c => c.Lengths));
    }

    [Fact]
    public void Evaluation_slices_keep_the_training_task_and_grow_only_the_length()
    {
        var s = ExtrapolationSettings.Default;
        var mqar = (MqarConfig)s.EvalTask(ExtrapolationTask.Mqar);
        Assert.Equal([64, 128, 256], mqar.Test.Select(t => t.SeqLen));
        Assert.All(mqar.Test, t => Assert.Equal(s.MqarPairs, t.NumKvPairs));
        Assert.NotEqual(mqar.TrainSeed, mqar.TestSeed);
        // not the validation set
        Assert.NotEqual(((MqarConfig)s.RunConfig(ExtrapolationTask.Mqar, MixerKind.GatedDeltaNet, 1e-3).Task).TestSeed, mqar.TestSeed);
        var passkey = (PasskeyConfig)s.EvalTask(ExtrapolationTask.Passkey);
        Assert.All(passkey.Test, t => Assert.Equal(DepthKind.Even, t.Depths));
        Assert.Equal(s.TrainLength, passkey.Train.Single().SeqLen);
    }

    [Fact]
    public void Invalid_factors_fail_before_training_naming_the_field()
    {
        using var dir = new Tmp.Dir();
        var e = Assert.Throws<ConfigException>(() => Extrapolation.Sweep(quick: true, [1, 2, 8]));   // 8L = 256 ≥ V 160
        Assert.Contains("seq_len", e.Message);
        Assert.Contains("vocab_size", e.Message);
        Assert.Throws<ConfigException>(() => Extrapolation.Sweep(quick: true, [0]));
    }

    [Fact]
    public void Factors_replace_every_task_final_evaluation_and_keep_its_examples_and_seed()
    {
        var sweep = Extrapolation.Sweep(quick: false, [1, 3, 6]);   // 6L = 384 < V 512
        var s = ExtrapolationSettings.Default with { EvalFactors = [1, 3, 6] };
        Assert.Equal(s.EvalLengths, Extrapolation.EvalLengths(sweep));
        foreach (var run in sweep.Runs())
        {
            var task = run.Cell["task"] == "mqar" ? ExtrapolationTask.Mqar : ExtrapolationTask.Passkey;
            Assert.Equal(Json(s.EvalTask(task)), Json(run.FinalEval!.Task));
            Assert.True(run.Config.Model.MaxPositions >= s.EvalLengths.Max());
        }
    }

    /// <summary>A task section as the config binder writes it, so two configs compare field by field.</summary>
    static string Json(ITask task) => System.Text.Json.JsonSerializer.Serialize(task, task.GetType(), ConfigBinder.WriteOptions);

    static string Snake(Enum e) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(e.ToString());

    [Theory]
    [InlineData("extrapolate")]
    [InlineData("extrapolate-quick")]
    public void The_bundled_sweep_trains_and_scores_what_the_settings_do(string preset)
    {
        var s = preset == "extrapolate" ? ExtrapolationSettings.Default : ExtrapolationSettings.Quick;
        var runs = Mnemo.Sweeps.SweepConfig.Load(preset).Runs();
        Assert.Equal(s.Tasks.Length * s.Mixers.Length * s.LearningRates.Length, runs.Count);
        foreach (var task in s.Tasks)
            foreach (var mixer in s.Mixers)
                foreach (double lr in s.LearningRates)
                {
                    var run = runs.Single(r => r.Cell["task"] == Snake(task) && r.Cell["model"] == Snake(mixer)
                        && r.Lr == lr);
                    var expected = s.RunConfig(task, mixer, lr);
                    Assert.Equal(expected.TaskKind, run.Config.TaskKind);
                    Assert.Equal(Json(expected.Task), Json(run.Config.Task));
                    Assert.Equal(ConfigBinder.ToJson(expected.ResolvedModel), ConfigBinder.ToJson(run.Config.ResolvedModel));
                    Assert.Equal(ConfigBinder.ToJson(expected.Training), ConfigBinder.ToJson(run.Config.Training));
                    // The final evaluation: the same task at every evaluation length, from the evaluation seed.
                    Assert.Equal(expected.TaskKind, run.FinalEval!.TaskKind);
                    Assert.Equal(Json(s.EvalTask(task)), Json(run.FinalEval.Task));
                }
    }
}
