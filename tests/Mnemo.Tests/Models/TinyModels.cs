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
        var c = new ModelConfig { Mixer = mixer, VocabSize = 40, DModel = 16, NumHeads = 2, NumLayers = 2, MlpRatio = 2, ChunkSize = 8 };
        return edit is null ? c : edit(c);
    }

    /// <summary>A seeded model, in fp64 unless asked otherwise (equivalence checks at 1e-10).</summary>
    public static LanguageModel Build(ModelConfig c, bool fp64 = true)
    {
        TorchRuntime.Seed(5);
        var model = new LanguageModel(c);
        if (fp64) model.to(float64);
        return model;
    }

    public static Tensor Tokens(long b, long t, int seed = 9) => randint(0, 40, [b, t], generator: new Generator((ulong)seed));

    /// <summary>Collects the training loss of every step.</summary>
    public sealed class Losses : ITrainingObserver
    {
        public List<double> Values { get; } = [];
        public void Stepped(StepMetrics m) => Values.Add(m.Loss);
    }
}
