using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>Autoregressive sampling through the streaming path (KV caches / memory states), one token at a time.</summary>
public static class Generation
{
    /// <summary>
    /// Feeds the prompt, then samples <paramref name="count"/> tokens. Temperature 0 is greedy; otherwise softmax
    /// sampling over the top <paramref name="topK"/> logits (0 = all) from a generator seeded with <paramref name="seed"/>.
    /// </summary>
    public static long[] Sample(LanguageModel model, long[] prompt, int count, double temperature = 0, int topK = 0, long seed = 0)
    {
        if (prompt.Length == 0) throw new MnemoException("the prompt is empty: give at least one token id");
        if (!double.IsFinite(temperature) || temperature < 0)
            throw new MnemoException($"--temperature must be a finite number ≥ 0 (0 = greedy), got {temperature}");
        if (topK < 0) throw new MnemoException($"--top-k must be ≥ 0 (0 = all tokens), got {topK}");
        long vocab = model.Config.VocabSize;
        foreach (long id in prompt)
            if (id < 0 || id >= vocab) throw new MnemoException($"prompt token {id} is outside the vocabulary [0, {vocab})");
        using var noGrad = no_grad();
        using var cache = model.NewCache();
        using var generator = new Generator((ulong)seed);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var output = new long[count];
            using (var scope = NewDisposeScope())
            {
                Tensor logits;
                var whole = tensor(new long[] { prompt.Length });                           // the prompt is the prefix JRT reads
                using (Runtime.GcQuiet.Enter())
                    logits = model.Step(tensor(prompt, [1, prompt.Length]), cache, whole).select(1, -1);  // [1, V]
                for (int i = 0; i < count; i++)
                {
                    using var quiet = Runtime.GcQuiet.Enter();                            // one token's calls (see GcQuiet)
                    output[i] = Pick(logits, temperature, topK, generator);
                    logits = model.Step(tensor(new[] { output[i] }, [1, 1]), cache).select(1, 0);
                }
            }
            return output;
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    static long Pick(Tensor logits, double temperature, int topK, Generator generator)
    {
        using var scope = NewDisposeScope();
        if (temperature <= 0) return logits.argmax(-1).item<long>();
        var scaled = logits.to(float32) / temperature;
        if (topK > 0 && topK < scaled.shape[^1])
        {
            var threshold = scaled.topk(topK).values.narrow(-1, topK - 1, 1);
            scaled = scaled.masked_fill(scaled.lt(threshold), double.NegativeInfinity);
        }
        return multinomial(scaled.softmax(-1), 1, generator: generator).item<long>();
    }
}
