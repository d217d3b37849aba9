using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Retrieval;

/// <summary>A training pair of the generator: from a source, generate a target n-gram of the same passage.</summary>
public sealed record SealPair(int[] Source, int[] Target);

/// <summary>
/// SEAL's n-gram generator as a decoder-only language model (docs/retrieval.md#the-generator): a row is
/// source ‖ SEP ‖ target and only the target's tokens are scored, so the model learns P(n-gram | query). Any Mnemo
/// mixer can be the model. The paper fine-tunes BART (an encoder-decoder); here the source is the prompt.
/// </summary>
public sealed class SealGenerator
{
    readonly SealCorpus _corpus;
    readonly int _maxSource;

    public LanguageModel Model { get; }

    public SealGenerator(SealCorpus corpus, ModelConfig model, int maxSourceTokens)
    {
        _corpus = corpus;
        _maxSource = maxSourceTokens;
        Model = new LanguageModel(model with { VocabSize = corpus.Vocabulary });
    }

    /// <summary>
    /// A training pair drawn from <paramref name="rng"/>. With probability <paramref name="supervisedShare"/>: the
    /// paraphrase of a verse that is not held out, asking for a span of that verse's indexed text (the paper's
    /// supervised query → span pairs). Otherwise a span of a passage asking for another span of it (its unsupervised
    /// pairs). Spans are <paramref name="length"/> tokens at a uniform start; a shorter verse is taken whole.
    /// </summary>
    public SealPair Draw(Random rng, double supervisedShare, int length)
    {
        var passages = _corpus.Passages;
        while (true)
        {
            int p = rng.Next(passages.Count);
            var tokens = _corpus.Tokens[p];
            if (rng.NextDouble() < supervisedShare)
            {
                int verse = rng.Next(passages[p].Verses.Count);
                if (verse == passages[p].HeldOut) continue;
                var source = Clip(_corpus.Encode(passages[p].Verses[verse].Paraphrase));
                return new SealPair(source, OverlappingSpan(_corpus.VerseTokens(p, verse), source, length, rng));
            }
            if (tokens.Length < 2) continue;
            var from = Span(tokens, Math.Max(length, 16), rng);
            return new SealPair(Clip(from), Span(tokens, length, rng));
        }
    }

    int[] Clip(int[] source) => source.Length <= _maxSource ? source : source[.._maxSource];

    /// <summary>
    /// A span of <paramref name="tokens"/> whose start is drawn with probability ∝ exp(τ · o), o the share of the span's
    /// tokens that occur in the source, τ = <see cref="OverlapTemperature"/>: as the paper's code draws supervised spans
    /// by their fuzzy overlap with the query, so the generator learns which words of a query to carry into the corpus.
    /// </summary>
    static int[] OverlappingSpan(ReadOnlySpan<int> tokens, int[] source, int length, Random rng)
    {
        if (tokens.Length <= length) return tokens.ToArray();
        var inSource = source.ToHashSet();
        var weights = new double[tokens.Length - length + 1];
        for (int start = 0; start < weights.Length; start++)
        {
            int shared = 0;
            foreach (int t in tokens.Slice(start, length)) if (inSource.Contains(t)) shared++;
            weights[start] = Math.Exp(OverlapTemperature * shared / length);
        }
        double u = rng.NextDouble() * weights.Sum();
        int pick = 0;
        for (; pick < weights.Length - 1 && u >= weights[pick]; pick++) u -= weights[pick];
        return tokens.Slice(pick, length).ToArray();
    }

    /// <summary>
    /// τ of <see cref="OverlappingSpan"/>: a span sharing every token with the query is e⁵ ≈ 150 times as likely as one
    /// sharing none.
    /// </summary>
    public const double OverlapTemperature = 5;

    static int[] Span(ReadOnlySpan<int> tokens, int length, Random rng)
    {
        if (tokens.Length <= length) return tokens.ToArray();
        int start = rng.Next(tokens.Length - length + 1);
        return tokens.Slice(start, length).ToArray();
    }

    /// <summary>Mean cross-entropy of the targets given their sources (a batch of pairs), in nats per target token.</summary>
    public Tensor Loss(IReadOnlyList<SealPair> batch)
    {
        using var scope = NewDisposeScope();
        var (rows, mask, labels) = Rows(batch);
        var logits = Model.ScoredLogits(rows, mask);                                                        // [N, V]
        return nn.functional.cross_entropy(logits, labels).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The rows source ‖ SEP ‖ target [B, T] (padded after the target, where nothing is read), the mask of the positions
    /// that predict a target token [B, T], and those tokens [N] in row-major order.
    /// </summary>
    (Tensor Rows, Tensor Mask, Tensor Labels) Rows(IReadOnlyList<SealPair> batch)
    {
        int width = batch.Max(p => p.Source.Length + 1 + p.Target.Length);
        var rows = new long[batch.Count * width];
        var mask = new bool[batch.Count * width];
        var labels = new List<long>();
        for (int b = 0; b < batch.Count; b++)
        {
            var (source, target) = (batch[b].Source, batch[b].Target);
            Array.Fill(rows, _corpus.Unknown, b * width, width);                        // padding after the row, never read
            for (int i = 0; i < source.Length; i++) rows[b * width + i] = source[i];
            rows[b * width + source.Length] = _corpus.Separator;
            for (int i = 0; i < target.Length; i++)
            {
                rows[b * width + source.Length + 1 + i] = target[i];
                mask[b * width + source.Length + i] = true;                             // this position predicts target[i]
                labels.Add(target[i]);
            }
        }
        return (tensor(rows, [batch.Count, width]), tensor(mask, [batch.Count, width]), tensor(labels.ToArray()));
    }

    /// <summary>
    /// Trains the model on pairs drawn from the training seed; returns the smoothed final loss. <paramref name="progress"/>
    /// hears (steps done, smoothed loss) every training.log_every steps.
    /// </summary>
    public double Fit(TrainingConfig t, double supervisedShare, int targetLength, Action<int, double>? progress = null)
    {
        var rng = new Random(t.Seed);
        return FitLoop.Run(Model, t, "the SEAL generator", _ =>
            Loss([.. Enumerable.Range(0, t.BatchSize).Select(_ => Draw(rng, supervisedShare, targetLength))]), progress);
    }

    /// <summary>log P(n | source) of each n-gram, by teacher forcing (one forward per 64 n-grams).</summary>
    public double[] LogProbs(int[] source, IReadOnlyList<int[]> ngrams)
    {
        var result = new double[ngrams.Count];
        for (int from = 0; from < ngrams.Count; from += 64)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var batch = ngrams.Skip(from).Take(64).Select(n => new SealPair(source, n)).ToList();
            var (rows, mask, labels) = Rows(batch);
            var logits = Model.ScoredLogits(rows, mask);                                                    // [N, V]
            var picked = logits.log_softmax(-1).gather(1, labels.unsqueeze(1)).squeeze(1).to(float64).data<double>().ToArray();
            int at = 0;
            for (int i = 0; i < batch.Count; i++)
                foreach (var _ in batch[i].Target) result[from + i] += picked[at++];
        }
        return result;
    }

    /// <summary>
    /// Next-token log-probabilities [H, V] after source ‖ SEP ‖ h for each hypothesis h (all of one length), from one
    /// forward of the H rows; H = 1 with an empty hypothesis gives the first step's distribution.
    /// </summary>
    public float[][] NextLogProbs(int[] source, IReadOnlyList<int[]> hypotheses)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int length = hypotheses[0].Length, width = source.Length + 1 + length;
        var rows = new long[hypotheses.Count * width];
        var mask = new bool[hypotheses.Count * width];
        for (int h = 0; h < hypotheses.Count; h++)
        {
            for (int i = 0; i < source.Length; i++) rows[h * width + i] = source[i];
            rows[h * width + source.Length] = _corpus.Separator;
            for (int i = 0; i < length; i++) rows[h * width + source.Length + 1 + i] = hypotheses[h][i];
            mask[h * width + width - 1] = true;
        }
        var logits = Model.ScoredLogits(tensor(rows, [hypotheses.Count, width]), tensor(mask, [hypotheses.Count, width]));
        var logProbs = logits.log_softmax(-1).to(float32).contiguous();                                  // [H, V]
        var flat = logProbs.data<float>().ToArray();
        int v = (int)logProbs.shape[1];
        return [.. Enumerable.Range(0, hypotheses.Count).Select(h => flat.AsSpan(h * v, v).ToArray())];
    }
}
