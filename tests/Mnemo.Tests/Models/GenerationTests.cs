using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Cli;
using Mnemo.Tests.Training;
using Mnemo.Training;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

[Collection(TorchCollection.Name)]
public class GenerationTests
{
    static LanguageModel Model(MixerKind mixer)
    {
        TorchRuntime.Seed(2);
        return new LanguageModel(new ModelConfig
        {
            Mixer = mixer, VocabSize = 30, DModel = 16, NumHeads = 2, NumLayers = 2, MlpRatio = 0, Matrix = new() { ChunkSize = 4 },
        });
    }

    [Theory]
    [InlineData(MixerKind.GatedDeltaNet)]
    [InlineData(MixerKind.Attention)]
    public void Greedy_streaming_generation_equals_recomputing_the_full_forward(MixerKind mixer)
    {
        var model = Model(mixer);
        long[] prompt = [3, 14, 15, 9, 2];
        var streamed = Generation.Sample(model, prompt, 12);
        var sequence = prompt.ToList();
        using (no_grad())
            for (int i = 0; i < 12; i++)
            {
                using var scope = NewDisposeScope();
                var logits = model.forward(tensor(sequence.ToArray(), [1, sequence.Count]));
                sequence.Add(logits[0, -1].argmax().item<long>());
            }
        Assert.Equal(sequence.Skip(prompt.Length), streamed);
    }

    [Fact]
    public void Sampling_is_reproducible_with_a_seed_and_checks_the_prompt()
    {
        var model = Model(MixerKind.GatedDeltaNet);
        var a = Generation.Sample(model, [1, 2, 3], 20, temperature: 1.0, topK: 5, seed: 7);
        var b = Generation.Sample(model, [1, 2, 3], 20, temperature: 1.0, topK: 5, seed: 7);
        Assert.Equal(a, b);
        Assert.All(a, t => Assert.InRange(t, 0, 29));
        Assert.Contains("outside the vocabulary", Assert.Throws<MnemoException>(() => Generation.Sample(model, [1, 30], 3)).Message);
        foreach (var t in new[] { double.NaN, double.PositiveInfinity, -1 })
            Assert.Contains("--temperature", Assert.Throws<MnemoException>(() => Generation.Sample(model, [1], 3, temperature: t)).Message);
        Assert.Contains("--top-k", Assert.Throws<MnemoException>(() => Generation.Sample(model, [1], 3, topK: -3)).Message);
    }

    [Fact]
    public void Generate_command_samples_from_a_checkpoint()
    {
        using var dir = new Tmp.Dir();
        new Trainer(TrainerTests.Tiny(4), dir["run"]).Run(resume: false);
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "generate", "--checkpoint", "run", "--prompt", "5, 40 6", "--tokens", "7");
        Assert.True(code == 0, stderr);
        Assert.Equal(7, stdout.Trim().Split(' ').Length);
        var bad = CliProcess.Run(dir.Path, "generate", "--checkpoint", "run", "--prompt", "5 x");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("\"x\" is not a token id", bad.Stderr);
    }
}
