using Mnemo.Writing;

namespace Mnemo.Experiments;

/// <summary>A passage cut in two: the first half is stored, the second half asks for it.</summary>
public sealed record PassagePair(string Stored, string Query);

/// <summary>How often the right passage came back: top-1 and top-k hit rates over every query of a store size.</summary>
public sealed record PassageRecallScore(string Embedder, int StoreSize, int Queries, double Top1, double TopK, int K);

/// <summary>
/// Retrieval of the right past passage by RecurrentGPT's long-term memory (docs/writing.md#retrieval-of-the-right-passage):
/// consecutive passages of a text are cut in two, the first halves are stored, and each second half is the query that
/// should find its own first half among the N stored (chance: k / N). Stores of N take consecutive passages, so the
/// distractors are the neighbouring passages of the same book.
/// </summary>
public static class PassageRecall
{
    /// <summary>
    /// <paramref name="count"/> consecutive passages of about <paramref name="length"/> characters from
    /// <paramref name="text"/>, each cut at whitespace and halved at the whitespace nearest its middle.
    /// </summary>
    public static IReadOnlyList<PassagePair> Pairs(string text, int count, int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 16);
        var pairs = new List<PassagePair>();
        int at = 0;                                                                     // the text's start, then a whitespace
        while (pairs.Count < count)
        {
            if (at + length > text.Length)
                throw new MnemoException($"the text ({text.Length:N0} characters) holds only {pairs.Count} passages of {length} " +
                    $"characters; ask for fewer or shorter ones");
            int end = NextSpace(text, at + length);
            if (end < 0) end = text.Length;
            int middle = NextSpace(text, at + (end - at) / 2);
            if (middle < 0) middle = end;
            string stored = Squeeze(text[at..middle]), query = Squeeze(text[middle..end]);
            if (stored.Length > 0 && query.Length > 0) pairs.Add(new PassagePair(stored, query));
            at = end;
        }
        return pairs;
    }

    static int NextSpace(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
            if (char.IsWhiteSpace(text[i])) return i;
        return -1;
    }

    static string Squeeze(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    /// <summary>
    /// Scores an embedder at each store size N: the pairs are taken N at a time (a last incomplete group is left out),
    /// each group's stored halves fill a fresh <see cref="LongTermMemory"/>, and each of its queries counts a hit when
    /// its own stored half is first (top-1) or among the first <paramref name="k"/>.
    /// </summary>
    public static IReadOnlyList<PassageRecallScore> Measure(IReadOnlyList<PassagePair> pairs, ITextEmbedder embedder,
        IReadOnlyList<int> storeSizes, int k, Action<string>? log = null)
    {
        var stored = pairs.Select(p => embedder.Embed(p.Stored)).ToArray();
        var queries = pairs.Select(p => embedder.Embed(p.Query)).ToArray();
        var scores = new List<PassageRecallScore>();
        foreach (int n in storeSizes)
        {
            if (n < 1 || n > pairs.Count)
                throw new MnemoException($"store size {n} must be between 1 and the {pairs.Count} passages measured");
            int hits1 = 0, hitsK = 0, asked = 0;
            for (int start = 0; start + n <= pairs.Count; start += n)
            {
                var memory = new LongTermMemory();
                for (int i = start; i < start + n; i++) memory.Add(new MemoryEntry(i, pairs[i].Stored, stored[i]));
                for (int i = start; i < start + n; i++)
                {
                    var found = memory.Retrieve(queries[i], k);
                    if (found.Count > 0 && found[0].Entry.Step == i) hits1++;
                    if (found.Any(r => r.Entry.Step == i)) hitsK++;
                    asked++;
                }
            }
            var score = new PassageRecallScore(embedder.Name, n, asked, (double)hits1 / asked, (double)hitsK / asked, k);
            log?.Invoke($"{embedder.Name}: store {n}, {asked} queries: top-1 {score.Top1:P1}, top-{k} {score.TopK:P1} " +
                $"(chance: top-1 {1.0 / n:P1}, top-{k} {Math.Min(1, (double)k / n):P1})");
            scores.Add(score);
        }
        return scores;
    }
}
