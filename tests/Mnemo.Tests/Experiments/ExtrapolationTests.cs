using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Tasks;

namespace Mnemo.Tests.Experiments;

[Collection(TorchCollection.Name)]
public class ExtrapolationTests
{
    [Fact]
    public void Quick_run_writes_every_task_model_and_length_and_resumes_without_retraining()
    {
        using var dir = new Tmp.Dir();
        var sweep = Extrapolation.Sweep(quick: true);
        int[] lengths = [32, 64, 128];
        var lines = new List<string>();
        var cells = Extrapolation.Run(sweep, dir.Path, _ => null, lines.Add)!;

        var json = JsonNode.Parse(File.ReadAllText(dir[Extrapolation.ResultsFile]))!;
        Assert.Equal(32, json["train_length"]!.GetValue<int>());
        Assert.Equal(lengths, json["eval_lengths"]!.AsArray().Select(l => l!.GetValue<int>()));
        var stored = json["cells"]!.AsArray();
        Assert.Equal(4, stored.Count);
        foreach (string task in new[] { "mqar", "passkey" })
            foreach (string model in new[] { "titans", "gated_delta_net" })
            {
                var cell = stored.Single(c => c!["task"]!.GetValue<string>() == task && c["model"]!.GetValue<string>() == model)!;
                var scored = cell["lengths"]!.AsArray();
                Assert.Equal(lengths, scored.Select(l => l!["seq_len"]!.GetValue<int>()));
                Assert.Equal([1, 2, 4], scored.Select(l => l!["factor"]!.GetValue<int>()));
                foreach (var l in scored)
                {
                    Assert.Equal(16, l!["examples"]!.GetValue<long>());
                    Assert.InRange(l["accuracy"]!.GetValue<double>(), 0, 1);
                    Assert.InRange(l["exact_match"]!.GetValue<double>(), 0, l["accuracy"]!.GetValue<double>());
                }
                Assert.Equal(sweep.LearningRates.Length, cell["validation_accuracy_by_lr"]!.AsObject().Count);
                Assert.Contains(cell["best_lr"]!.GetValue<double>(), sweep.LearningRates);
                Assert.True(cell["parameters"]!.GetValue<long>() > 0);
                Assert.True(Directory.Exists(cell["run_dir"]!.GetValue<string>()));
            }
        Assert.True(new FileInfo(dir[Extrapolation.PlotFile]).Length > 1000);
        // One progress line per cell, after the sweep's own lines.
        Assert.Equal(cells.Count, lines.Count(l => l.Contains(" (lr ", StringComparison.Ordinal)));

        // Equal size: the same d_model, layers and heads for every mixer of a task.
        var shapes = sweep.Runs().Select(r => r.Config.Model).Select(m => (m.DModel, m.NumLayers, m.NumHeads, m.MaxPositions >= 128));
        Assert.Single(shapes.Distinct());
        Assert.True(shapes.First().Item4);

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
        var runs = Extrapolation.Sweep(quick: false).Runs();
        var mqarRun = runs.First(r => r.Cell["task"] == "mqar");
        var (trained, mqar) = ((MqarConfig)mqarRun.Config.Task, (MqarConfig)mqarRun.FinalEval!.Task);
        Assert.Equal([64, 128, 256], mqar.Test.Select(t => t.SeqLen));
        Assert.All(mqar.Test, t => Assert.Equal(trained.Train[0].NumKvPairs, t.NumKvPairs));
        Assert.NotEqual(mqar.TrainSeed, mqar.TestSeed);
        Assert.NotEqual(trained.TestSeed, mqar.TestSeed);          // not the validation set
        Assert.Equal(Json(trained with { Test = mqar.Test, TestSeed = mqar.TestSeed }), Json(mqar));
        var passkeyRun = runs.First(r => r.Cell["task"] == "passkey");
        var passkey = (PasskeyConfig)passkeyRun.FinalEval!.Task;
        Assert.All(passkey.Test, t => Assert.Equal(DepthKind.Even, t.Depths));
        Assert.Equal(64, passkey.Train.Single().SeqLen);
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
        var bundled = Extrapolation.Sweep(quick: false).Runs();
        var sweep = Extrapolation.Sweep(quick: false, [1, 3, 6]);   // 6L = 384 < V 512
        Assert.Equal([64, 192, 384], LengthGrid.EvalLengths(sweep));
        foreach (var run in sweep.Runs())
        {
            var before = bundled.Single(r => r.Id == run.Id).FinalEval!.Task;
            Assert.Equal(Json(LengthGrid.TestAt(run.Config.Task, [64, 192, 384], 500, 3)), Json(run.FinalEval!.Task));
            Assert.Equal(500, before.TestBatches()[0].Count);
            Assert.True(run.Config.Model.MaxPositions >= 384);
        }
    }

    /// <summary>A task section as the config binder writes it, so two configs compare field by field.</summary>
    static string Json(ITask task) => System.Text.Json.JsonSerializer.Serialize(task, task.GetType(), ConfigBinder.WriteOptions);
}
