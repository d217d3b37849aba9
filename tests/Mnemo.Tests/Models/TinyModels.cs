using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>The small language models the mixer tests build: vocabulary 40, d_model 16, 2 heads, 2 layers.</summary>
public static class TinyModels
{
    public static ModelConfig Config(MixerKind mixer, Func<ModelConfig, ModelConfig>? edit = null)
    {
        var c = new ModelConfig
        {
            Mixer = mixer, VocabSize = 40, DModel = 16, NumHeads = 2, NumLayers = 2, MlpRatio = 2, Matrix = new() { ChunkSize = 8 },
        };
        return edit is null ? c : edit(c);
    }

    /// <summary>A seeded model, in fp64 unless asked otherwise (equivalence checks at 1e-10).</summary>
    public static LanguageModel Build(ModelConfig c, bool fp64 = true, int compressionTargets = 0)
    {
        TorchRuntime.Seed(5);
        var model = new LanguageModel(c, compressionTargets);
        if (fp64) model.to(float64);
        return model;
    }

    public static Tensor Tokens(long b, long t, int seed = 9) => randint(0, 40, [b, t], generator: new Generator((ulong)seed));

    /// <summary>
    /// Logits of <paramref name="tokens"/> [B, T] streamed through <paramref name="cache"/>: a prompt of
    /// <paramref name="prompt"/> tokens (with <paramref name="prefix"/> lengths for prefix-reading mixers), then one
    /// token at a time; [B, T, V], to compare with the full forward.
    /// </summary>
    public static Tensor Streamed(LanguageModel model, Tensor tokens, long prompt, ModelCache cache, Tensor? prefix = null)
    {
        var pieces = new List<Tensor> { model.Step(tokens.narrow(1, 0, prompt), cache, prefix) };
        for (long t = prompt; t < tokens.shape[1]; t++) pieces.Add(model.Step(tokens.narrow(1, t, 1), cache));
        return cat(pieces, 1);
    }

    /// <summary>Asserts every parameter has a finite, nonzero gradient (after the caller's backward).</summary>
    public static void AssertEveryParameterHasAGradient(LanguageModel model, string label)
    {
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.True(p.grad is not null, $"{label}: {name} has no gradient");
            Assert.True(p.grad!.isfinite().all().item<bool>(), $"{label}: {name} has a non-finite gradient");
            Assert.True(p.grad.abs().sum().item<float>() > 0, $"{label}: {name} has a zero gradient");
        }
    }

    /// <summary>
    /// Streams <paramref name="pieces"/> pieces (a 7-token piece every <paramref name="promptEvery"/>-th, else one
    /// token) and asserts the live tensor count after piece <paramref name="settledAfter"/> equals the last one:
    /// once the caches exist, every step frees what it made.
    /// </summary>
    public static void AssertStreamingKeepsLiveTensorsFlat(LanguageModel model, int pieces = 14, int promptEvery = 3, int settledAfter = 4)
    {
        using var noGrad = no_grad();
        using var cache = model.NewCache();
        var counts = new List<long>();
        for (int piece = 0; piece < pieces; piece++)
        {
            using (var scope = NewDisposeScope()) model.Step(Tokens(1, piece % promptEvery == 0 ? 7 : 1), cache);
            counts.Add(TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
        Assert.Equal(counts[settledAfter], counts[^1]);
    }

    /// <summary>Collects the training loss of every step.</summary>
    public sealed class Losses : ITrainingObserver
    {
        public List<double> Values { get; } = [];
        public void Stepped(StepMetrics m) => Values.Add(m.Loss);
    }
}
