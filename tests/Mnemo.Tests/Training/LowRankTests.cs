using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using Mnemo.Tests.Models;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Training;

/// <summary>LoRA: the update starts at zero, adds (alpha/rank)·x Aᵀ Bᵀ, and fine-tuning with it moves nothing else.</summary>
[Collection(TorchCollection.Name)]
public class LowRankTests
{
    [Fact]
    public void A_low_rank_update_adds_its_scaled_product_and_starts_at_zero()
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(1);
        var projection = new Projection(6, 5, hasBias: true);
        var x = randn([3, 6], generator: new Generator(2));
        var before = projection.forward(x).detach();
        projection.AddLowRank(rank: 2, alpha: 3);
        Assert.True(Equivalence.RelativeRms(projection.forward(x), before) == 0, "B starts at zero");
        var parameters = projection.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad()) parameters["lora_b"].normal_(generator: new Generator(3));
        var expected = before + x.matmul(parameters["lora_a"].t()).matmul(parameters["lora_b"].t()) * (3.0 / 2);
        Assert.True(Equivalence.RelativeRms(projection.forward(x), expected) <= 1e-6);
    }

    [Fact]
    public void Fine_tuning_with_lora_moves_only_the_updates()
    {
        using var dir = new Tmp.Dir();
        var source = Path.Combine(dir.Path, "attention");
        new Trainer(TrainerTests.Tiny(steps: 4), source).Run(resume: false);
        var lora = TrainerTests.Tiny(steps: 3);
        lora = lora with { Training = lora.Training with { InitFrom = source, LoraRank = 2, CheckpointEvery = 3 } };
        var tuned = Path.Combine(dir.Path, "lora");
        new Trainer(lora, tuned).Run(resume: false);

        var before = Checkpoint.LoadModel(source).Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var after = Checkpoint.LoadModel(tuned).Model.named_parameters().ToList();              // rebuilt with its updates
        Assert.Equal(3, after.Count(p => p.name.EndsWith(".lora_b", StringComparison.Ordinal)));   // q, k, v of one layer
        foreach (var (name, p) in after)
        {
            if (LowRank.IsLowRank(name))
            {
                if (name.EndsWith(".lora_b", StringComparison.Ordinal))
                    Assert.True(p.abs().sum().item<float>() > 0, $"{name} did not train");
                continue;
            }
            Assert.True((p - before[name]).abs().max().item<float>() == 0, $"{name} moved although frozen");
        }

        var none = lora with { Training = lora.Training with { LoraTargets = ["w_proj"] } };
        var error = Assert.Throws<ConfigException>(() => new Trainer(none, Path.Combine(dir.Path, "none")).Run(resume: false));
        Assert.Contains("training.lora_targets", error.Message);
    }
}
