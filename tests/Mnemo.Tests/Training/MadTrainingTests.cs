using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Tasks.Mad;
using Mnemo.Tasks.Verbatim;
using Mnemo.Tests.Models;
using Mnemo.Training;
using static TorchSharp.torch;

namespace Mnemo.Tests.Training;

[Collection(TorchCollection.Name)]
public class MadTrainingTests
{
    static ModelConfig Compressing() =>
        new() { Mixer = MixerKind.GatedDeltaNet, VocabSize = 16, DModel = 16, NumHeads = 2, NumLayers = 1, MlpRatio = 0 };

    static (Tensor Tokens, Tensor Mask) Compression(int b = 3, int l = 8)
    {
        var tokens = randint(0, 15, [b, l], dtype: int64, generator: new Generator(4));
        var mask = ones([b, l], dtype: @bool);
        mask[TensorIndex.Colon, -1] = false;                                        // the compression position itself
        return (tokens, mask);
    }

    [Fact]
    public void The_compression_decoder_reads_only_the_last_position()
    {
        var model = TinyModels.Build(Compressing(), compressionTargets: 7);
        var (tokens, mask) = Compression();
        var hidden = model.Hidden(tokens).detach().requires_grad_();
        var logits = model.ReadOut(hidden, mask, Readout.Compression);
        Assert.Equal([3L * 7, 16], logits.shape);
        logits.sum().backward();
        var grad = hidden.grad!;
        Assert.Equal(0, grad.narrow(1, 0, 7).abs().sum().item<double>());
        Assert.True(grad.select(1, -1).abs().sum().item<double>() > 0);
        Assert.True(model.ScoredLogits(tokens, mask, Readout.Compression).allclose(logits));
    }

    [Fact]
    public void Gradient_reaches_every_parameter_through_the_compression_readout()
    {
        var model = TinyModels.Build(Compressing(), fp64: false, compressionTargets: 7);
        var (tokens, mask) = Compression();
        var logits = model.ScoredLogits(tokens, mask, Readout.Compression);
        nn.functional.cross_entropy(logits, tokens.index([TensorIndex.Tensor(mask)])).backward();
        TinyModels.AssertEveryParameterHasAGradient(model, "compression");
        Assert.Contains(model.named_parameters(), p => p.name.StartsWith("compression_decoder."));
    }

    [Fact]
    public void Models_without_compression_targets_are_unchanged_and_refuse_the_readout()
    {
        var model = TinyModels.Build(Compressing(), compressionTargets: 0);
        Assert.DoesNotContain(model.named_parameters(), p => p.name.Contains("compression"));
        var (tokens, mask) = Compression();
        Assert.Throws<InvalidOperationException>(() => model.ScoredLogits(tokens, mask, Readout.Compression));
        Assert.DoesNotContain("compression_targets", new RunConfig().ToJson());
    }

    static RunConfig Run(ModelConfig? model = null) => new()
    {
        Model = model ?? new ModelConfig { DModel = 16, NumHeads = 2, NumLayers = 1, MlpRatio = 0 },
        Training = TrainerTests.Tiny().Training with { Steps = 4, EvalEvery = 4, CheckpointEvery = 4 },
    };

    [Theory]
    [InlineData(MadTask.InContextRecall)]
    [InlineData(MadTask.FuzzyInContextRecall)]
    [InlineData(MadTask.NoisyInContextRecall)]
    [InlineData(MadTask.SelectiveCopying)]
    [InlineData(MadTask.Memorization)]
    [InlineData(MadTask.Compression)]
    public void A_tiny_model_trains_on_each_MAD_task_and_reports_macro_accuracy(MadTask task)
    {
        using var dir = new Tmp.Dir();
        var mad = new MadConfig
        {
            Task = task,
            SeqLen = 40,
            NumTrainExamples = 32,
            NumTestExamples = 16,
            VocabSize = task == MadTask.Memorization ? 32 : 0,
            CompressionTargets = task == MadTask.Compression ? 40 : 0,
        };
        var config = Run() with { Task = mad };
        var outcome = new Trainer(config, dir.Path).Run(resume: false);
        var eval = outcome.LastEval!;
        Assert.Equal(eval.Metrics![MacroAccuracyMetric.Name], eval.Accuracy, 12);
        Assert.InRange(eval.Accuracy, 0, 1);
        Assert.InRange(eval.Metrics[MqarEvaluator.TokenAccuracy], 0, 1);
        Assert.Contains("macro_accuracy", File.ReadLines(Path.Combine(dir.Path, Trainer.MetricsFile)).Last());
    }

    [Fact]
    public void Compression_without_a_decoder_is_a_config_error()
    {
        using var dir = new Tmp.Dir();
        var config = Run() with { Task = new MadConfig { Task = MadTask.Compression, NumTrainExamples = 8, NumTestExamples = 4 } };
        var e = Assert.Throws<ConfigException>(() => new Trainer(config, dir.Path).Run(resume: false));
        Assert.Contains("compression_targets", e.Message);
    }

    [Fact]
    public void A_tiny_model_trains_on_mamba_selective_copying()
    {
        using var dir = new Tmp.Dir();
        var task = new SelectiveCopyingConfig
        {
            NumTokensToCopy = 4,
            Train = [new() { SeqLen = 24, NumExamples = 32 }],
            Test = [new() { SeqLen = 24, NumExamples = 8 }, new() { SeqLen = 48, NumExamples = 8 }],
        };
        var eval = new Trainer(Run() with { Task = task }, dir.Path).Run(resume: false).LastEval!;
        Assert.Equal(2, eval.Slices.Count);
        Assert.Null(eval.Metrics);                                                  // plain per-position accuracy
    }

    [Fact]
    public void A_tiny_model_trains_on_verbatim_repetition_and_reports_repeat_surprisal()
    {
        using var dir = new Tmp.Dir();
        var task = new VerbatimConfig
        {
            NumNouns = 16,
            Train = [new() { ListLen = 3, FillerLen = 4, NumExamples = 30 }],
            Test = [new() { ListLen = 3, FillerLen = 4, NumExamples = 9 }],
        };
        var eval = new Trainer(Run() with { Task = task }, dir.Path).Run(resume: false).LastEval!;
        Assert.Equal(eval.Metrics![VerbatimMetric.List2Accuracy], eval.Accuracy, 12);
        foreach (var c in new[] { "repeat", "permute", "novel" })
            Assert.True(double.IsFinite(eval.Metrics[VerbatimMetric.SurprisalPrefix + c])
                && eval.Metrics[VerbatimMetric.SurprisalPrefix + c] > 0, c);
    }
}
