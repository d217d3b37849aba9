using Mnemo.Layers;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using Mnemo.Tests.Cli;
using Mnemo.Tests.Memory;
using Mnemo.Tests.Training;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// Liger attention: the attention layer's own weights, read half by sliding-window softmax attention and half by a GLA
/// memory built from them; no new parameters, so an attention checkpoint loads into it; it streams like its full forward.
/// </summary>
[Collection(TorchCollection.Name)]
public class LigerTests
{
    static ModelConfig Config(MixerKind mixer, int window) => TinyModels.Config(mixer,
        c => c with { Positions = PositionKind.None, Attention = new AttentionConfig { Window = window } });

    [Fact]
    public void Liger_has_exactly_the_attention_models_parameters()
    {
        using var scope = NewDisposeScope();
        static Dictionary<string, long[]> Shapes(ModelConfig c) =>
            TinyModels.Build(c).named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var attention = Shapes(Config(MixerKind.Attention, 0));
        var liger = Shapes(Config(MixerKind.LigerAttention, 4));
        Assert.Equal(attention.Keys.Order(), liger.Keys.Order());
        Assert.All(attention, p => Assert.Equal(p.Value, liger[p.Key]));
    }

    [Fact]
    public void The_layer_is_half_window_attention_and_half_the_gated_memory_of_its_own_weights()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var c = Config(MixerKind.LigerAttention, 5);
        TorchRuntime.Seed(3);
        var liger = new Attention(c, c.Attention, liger: true);
        TorchRuntime.Seed(3);
        var window = new Attention(c, c.Attention);                                       // the same weights, attention alone
        liger.to(float64);
        window.to(float64);
        var x = randn([2, 19, 16], float64, generator: new Generator(4));
        var (q, k, v) = window.Project(x, null, 0);                                        // [B, H, T, Dh]; no positions
        (q, k, v) = (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));           // [B, T, H, Dh]
        var (memory, _) = NaiveMatrixMemory.GatedLinear(q.softmax(-1), k.softmax(-1), v,
            nn.functional.logsigmoid(k) / 16, null);                                      // the recurrence, token by token
        var expected = 0.5 * window.forward(x) + 0.5 * window.Output(memory.transpose(1, 2));
        double error = Equivalence.RelativeRms(liger.forward(x), expected);
        Assert.True(error <= 1e-10, $"liger vs its two branches: {error:E2}");
    }

    [Fact]
    public void Liger_streams_like_its_full_forward()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(Config(MixerKind.LigerAttention, 4) with { Positions = PositionKind.Rope });
        var x = TinyModels.Tokens(2, 23);
        var full = model.forward(x);
        using var cache = model.NewCache();
        double error = Equivalence.RelativeRms(TinyModels.Streamed(model, x, 9, cache), full);
        Assert.True(error <= 1e-10, $"streamed vs full: {error:E2}");
    }

    [Fact]
    public void Convert_writes_a_fine_tuning_run_that_starts_from_the_attention_weights()
    {
        using var dir = new Tmp.Dir();
        var run = Path.Combine(dir.Path, "attention");
        new Trainer(TrainerTests.Tiny(steps: 4), run).Run(resume: false);
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "convert", "--checkpoint", run, "--window", "8", "-o", "liger.json",
            "--set", "training.steps=2");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var config = RunConfig.Load(Path.Combine(dir.Path, "liger.json"));
        Assert.Equal(MixerKind.LigerAttention, config.Model.Mixer);
        Assert.Equal(8, config.Model.Attention.Window);
        Assert.Equal(2, config.Training.Steps);

        // The fine-tuning run starts from the attention model's weights (a step at learning rate 1e-9 moves each by ~1e-9).
        var tuned = Path.Combine(dir.Path, "liger");
        var still = config.Training with { Steps = 1, WarmupSteps = 0, Lr = 1e-9, CheckpointEvery = 1 };
        new Trainer(config with { Training = still }, tuned).Run(resume: false);
        var before = Checkpoint.LoadModel(run).Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var after = Checkpoint.LoadModel(tuned).Model.named_parameters().ToList();
        Assert.Equal(before.Count, after.Count);
        Assert.All(after, p =>
            Assert.True(Equivalence.RelativeRms(p.parameter, before[p.name]) < 1e-6, $"{p.name} is not the checkpoint's"));

        var lora = CliProcess.Run(dir.Path, "convert", "--checkpoint", run, "-o", "lora.json", "--set", "training.lora_rank=2");
        Assert.True(lora.ExitCode == 0, lora.Stderr);
        Assert.Equal(2, RunConfig.Load(Path.Combine(dir.Path, "lora.json")).Training.LoraRank);

        var missing = CliProcess.Run(dir.Path, "train", "-c", "liger.json", "--set", "training.init_from=nowhere", "-o", "x");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("training.init_from", missing.Stderr);
    }
}
