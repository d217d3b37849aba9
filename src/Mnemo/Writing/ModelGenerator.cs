using Mnemo.Models;
using Mnemo.Text;
using static TorchSharp.torch;

namespace Mnemo.Writing;

/// <summary>
/// A Mnemo language model as the loop's generator: the prompt's last <c>promptTokens</c> tokens are fed through the
/// streaming path and <c>tokens</c> tokens sampled after them (<see cref="Generation.Sample"/>). The sampler's seed is
/// the run's seed, the call's index and the attempt, so the same run draws the same text.
/// </summary>
public sealed class ModelGenerator(LanguageModel model, ITokenizer tokenizer, int tokens, int promptTokens, double temperature,
    int topK, long seed) : IPassageGenerator
{
    int _calls;

    public string Name => $"mnemo ({Runtime.Names.Of(model.Config.Mixer)})";

    public string Generate(string prompt, int attempt)
    {
        var kept = Tail(tokenizer.Encode(prompt), promptTokens);
        var output = Generation.Sample(model, kept, tokens, temperature, topK, seed * 1_000_003 + _calls++ * 31 + attempt);
        return tokenizer.Decode(output.Select(i => (int)i));
    }

    /// <summary>The last <paramref name="count"/> token ids of a text, as the model reads them.</summary>
    internal static long[] Tail(int[] ids, int count) => [.. ids.Skip(Math.Max(0, ids.Length - count)).Select(i => (long)i)];
}

/// <summary>
/// A Mnemo language model as an embedder: the mean over positions of its final hidden states for the text's last
/// <paramref name="maxTokens"/> tokens, L2-normalised.
/// </summary>
public sealed class ModelEmbedder(LanguageModel model, ITokenizer tokenizer, int maxTokens) : ITextEmbedder
{
    public string Name => $"mnemo ({Runtime.Names.Of(model.Config.Mixer)}) mean hidden state";

    public float[] Embed(string text)
    {
        var kept = ModelGenerator.Tail(tokenizer.Encode(text), maxTokens);
        if (kept.Length == 0) return new float[model.Config.DModel];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var mean = model.Hidden(tensor(kept, [1, kept.Length])).mean([1]).squeeze(0).to(ScalarType.Float32);   // [D]
            return Vectors.Normalized(mean.data<float>().ToArray());
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
