using Mnemo.Runtime;
using Mnemo.Text;

namespace Mnemo.Tasks;

/// <summary>
/// Token-level S-NIAH-1/2/3 (RULER single needle, docs/tasks.md#s-niah). An example of length L is
/// <code>
///   haystack[..at]  NEEDLE key v1 … vn  haystack[at..]  QUERY key v1 … vn
/// </code>
/// laid out by <see cref="Passkey.Write"/>: labels are the n value symbols after QUERY (teacher forced), so exact
/// match is greedy decoding's exact match, the headline metric.
/// <list type="bullet">
/// <item>Haystack: variant 1 repeats the noise sentences from the first; variants 2 and 3 take running text from
/// a random sentence of the corpus. Either way it is tokenised text, ids below the tokenizer's vocabulary, so
/// markers, keys and value symbols (ids above it) occur only in the needle and the query.</item>
/// <item>Depth: a fraction of the haystack, uniform or evenly spread within the slice's depth bin; the needle goes
/// at the sentence boundary nearest to it (RULER places needles between sentences). A bin names the drawn depth:
/// with sentences long against a narrow bin, snapping can put a needle just outside it (a heatmap row is then
/// "needles drawn at this depth", off by at most half a sentence).</item>
/// </list>
/// Each test slice becomes one batch per depth bin (see <see cref="Bins"/>); each example has its own stream seeded
/// by (seed, batch, index).
/// </summary>
public static class Niah
{
    /// <summary>The noise haystack's sentences (Landmark Attention's / RULER's filler).</summary>
    public static readonly string[] NoiseSentences =
        ["The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again."];

    static readonly Dictionary<TokenizerKind, TokenizedBook> NoiseBooks = [];

    static TokenizedBook NoiseBook(TokenizerKind kind)
    {
        lock (NoiseBooks)
            return NoiseBooks.TryGetValue(kind, out var book) ? book : NoiseBooks[kind] =
                new TokenizedBook(NoiseSentences, Tokenizers.Get(kind));
    }

    /// <summary>Batches of the slices: one per (slice, depth bin), in slice order then bin order.</summary>
    public static TaskBatch[] GenerateAll(NiahConfig task, NiahSlice[] slices, int seed)
    {
        var batches = new List<TaskBatch>();
        foreach (var slice in slices)
            for (int bin = 0; bin < slice.DepthBins; bin++)
                batches.Add(Generate(task, slice, bin, seed, batches.Count));
        return batches.ToArray();
    }

    /// <summary>What each batch of <see cref="GenerateAll"/> holds: its length and depth range.</summary>
    public static IReadOnlyList<SliceBin> Bins(NiahSlice[] slices) =>
        slices.SelectMany(s => Enumerable.Range(0, s.DepthBins)
            .Select(b => new SliceBin(s.SeqLen, "depth", (double)b / s.DepthBins, (double)(b + 1) / s.DepthBins))).ToList();

    public static TaskBatch Generate(NiahConfig task, NiahSlice slice, int bin, int seed, int batchIndex)
    {
        int n = slice.NumExamples, l = slice.SeqLen;
        var book = task.TextHaystack ? task.Text.Book() : NoiseBook(task.Text.Tokenizer);
        return Examples.Generate(n, l, 1, seed, batchIndex, (i, rng, input, label) =>
        {
            double within = slice.Depths == DepthKind.Uniform ? rng.NextDouble() : (i + 0.5) / n;
            WriteExample(task, book, l, (bin + within) / slice.DepthBins, rng, input, label);
        });
    }

    /// <summary>The sentence boundary of the haystack (a sentence start, or its end) nearest to depth·h.</summary>
    public static int NeedleAt(int[] sentenceStarts, int haystackLength, double depth)
    {
        double target = depth * haystackLength;
        int best = haystackLength;
        foreach (int s in sentenceStarts)
            if (Math.Abs(s - target) < Math.Abs(best - target)) best = s;
        return best;
    }

    static void WriteExample(NiahConfig task, TokenizedBook book, int seqLen, double depth, Random rng, Span<long> input, Span<long> label)
    {
        int n = task.ValueLength, h = Passkey.HaystackLength(seqLen, n);
        long key = task.FirstKey + rng.Next(task.NumKeys);
        var value = new long[n];
        for (int i = 0; i < n; i++) value[i] = task.FirstValue + rng.Next(task.ValueSymbols);
        int start = task.TextHaystack ? rng.Next(book.SentenceCount) : 0;
        var (haystack, starts) = book.Take(start, h);
        Passkey.Write(haystack, NeedleAt(starts, h, depth), task.NeedleMarker, task.QueryMarker, key, value, input, label);
    }
}
