using System.Collections.Concurrent;
using Mnemo.IO;
using Mnemo.Text;

namespace Mnemo.Tasks.LanguageModeling;

/// <summary>A text cut by position into a training part and a held-out tail, each tokenised on its own.</summary>
/// <param name="HeldOutStart">the character index where the held-out part begins (a line start)</param>
public sealed record SplitText(string Corpus, int[] Train, int[] HeldOut, int HeldOutStart, int Characters);

/// <summary>The language-modelling task's windows (see <see cref="LanguageModelingConfig"/>).</summary>
public static class LanguageModeling
{
    static readonly ConcurrentDictionary<(TextConfig, double), Lazy<SplitText>> Splits = new();

    /// <summary>The corpus of <paramref name="c"/> split and tokenised, once per distinct (text, fraction).</summary>
    public static SplitText Split(LanguageModelingConfig c) => Splits.GetOrAdd((c.Text, c.ValidationFraction),
        key => new Lazy<SplitText>(() =>
        {
            var corpus = key.Item1.Load();
            return Split(corpus.Name, corpus.Text, key.Item2, Tokenizers.Get(key.Item1.Tokenizer));
        })).Value;

    /// <summary>
    /// Cuts <paramref name="text"/> at the first line start at or after (1 − fraction) of its characters (at that
    /// character when no line starts later) and tokenises both parts.
    /// </summary>
    public static SplitText Split(string name, string text, double fraction, ITokenizer tokenizer)
    {
        int cut = (int)Math.Floor((1 - fraction) * text.Length);
        int line = text.IndexOf('\n', Math.Max(0, cut - 1));
        if (line >= 0 && line + 1 < text.Length) cut = line + 1;
        if (cut <= 0 || cut >= text.Length)
            throw new ConfigException($"task.validation_fraction: {fraction} leaves no text on one side of the cut ({name} has " +
                $"{text.Length:N0} characters)");
        return new SplitText(name, tokenizer.Encode(text[..cut]), tokenizer.Encode(text[cut..]), cut, text.Length);
    }

    public static TaskBatch[] TrainBatches(LanguageModelingConfig c)
    {
        var split = Split(c);
        return c.Train.Select((s, i) =>
        {
            int last = split.Train.Length - (s.SeqLen + 1);                    // the last offset whose window fits
            if (last < 0)
                throw new ConfigException($"task.train[{i}].seq_len: a window of {s.SeqLen:N0} tokens needs {s.SeqLen + 1:N0}; the " +
                    $"training part of {split.Corpus} has {split.Train.Length:N0}");
            return Examples.Generate(s.NumExamples, s.SeqLen, 0, c.TrainSeed, i, (_, rng, input, label) =>
                Window(split.Train, rng.Next(last + 1), input, label));
        }).ToArray();
    }

    public static TaskBatch[] TestBatches(LanguageModelingConfig c)
    {
        var split = Split(c);
        return c.Test.Select((s, i) =>
        {
            long need = (long)s.NumExamples * s.SeqLen + 1;
            if (need > split.HeldOut.Length)
                throw new ConfigException($"task.test[{i}].num_examples: {s.NumExamples:N0} windows of {s.SeqLen:N0} tokens need " +
                    $"{need:N0} held-out tokens; the held-out {c.ValidationFraction:P0} of {split.Corpus} has {split.HeldOut.Length:N0} " +
                    "(lower num_examples or seq_len, or raise validation_fraction)");
            return Examples.Generate(s.NumExamples, s.SeqLen, 0, 0, i, (j, _, input, label) =>
                Window(split.HeldOut, j * s.SeqLen, input, label));
        }).ToArray();
    }

    /// <summary>inputs = tokens[o, o + L), labels = tokens[o + 1, o + L + 1): every position scored.</summary>
    static void Window(int[] tokens, int offset, Span<long> input, Span<long> label)
    {
        for (int t = 0; t < input.Length; t++)
        {
            input[t] = tokens[offset + t];
            label[t] = tokens[offset + t + 1];
        }
    }
}
