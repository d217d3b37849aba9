using Mnemo.Text;

namespace Mnemo.Tasks.LanguageModeling;

/// <summary>
/// A test slice's bits per byte and perplexity (docs/tasks.md#language-modelling): with n scored tokens of b UTF-8 bytes
/// in all and natural log-likelihoods ln p, bits per byte = −Σ ln p / (b ln 2) and perplexity = exp(−Σ ln p / n).
/// For the byte tokenizer b = n, so bits per byte = log₂ perplexity. With BPE, b is the UTF-8 length of each window's
/// scored tokens decoded together: exact, except that a character split between a window's edge and the next window
/// counts as one replacement character (3 bytes).
/// </summary>
public sealed class LanguageModelingMetric(ITokenizer tokenizer) : ISliceMetric
{
    public const string BitsPerByte = "bits_per_byte";
    public const string Perplexity = "perplexity";

    double _nats;
    long _tokens, _bytes;

    public bool NeedsLogProbs => true;

    public void AddExample(int example, ReadOnlySpan<long> labels, ReadOnlySpan<long> predicted, ReadOnlySpan<float> logProbs)
    {
        var scored = new List<int>(labels.Length);
        for (int t = 0; t < labels.Length; t++)
        {
            if (labels[t] == TaskBatch.Ignore) continue;
            _nats -= logProbs[t];
            scored.Add((int)labels[t]);
        }
        _tokens += scored.Count;
        _bytes += tokenizer.ByteLength(scored);
    }

    public IEnumerable<KeyValuePair<string, double>> Values() =>
    [
        new(BitsPerByte, _bytes == 0 ? double.NaN : _nats / (_bytes * Math.Log(2))),
        new(Perplexity, _tokens == 0 ? double.NaN : Math.Exp(_nats / _tokens)),
    ];
}
