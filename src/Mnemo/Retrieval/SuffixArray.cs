namespace Mnemo.Retrieval;

/// <summary>
/// The suffix array of a string of non-negative symbols: the starting positions of its suffixes in lexicographic order,
/// a suffix that is a prefix of another sorting first (docs/retrieval.md#the-fm-index). Built by prefix doubling
/// (Manber and Myers): after round h the suffixes are sorted by their first 2^h symbols, each round one counting sort
/// by rank, so O(n log n) time and a few int arrays of n.
/// </summary>
public static class SuffixArray
{
    public static int[] Build(ReadOnlySpan<int> text)
    {
        int n = text.Length;
        if (n == 0) return [];
        int alphabet = 0;
        foreach (int s in text)
        {
            if (s < 0) throw new ArgumentException($"symbols must be ≥ 0, got {s}", nameof(text));
            alphabet = Math.Max(alphabet, s + 1);
        }
        var sa = new int[n];
        var rank = new int[n];
        var next = new int[n];
        var byRank = new int[n];
        // Round 0: sort by the first symbol; ranks are the symbols, renumbered densely.
        var count = new int[Math.Max(alphabet, n) + 1];
        for (int i = 0; i < n; i++) count[text[i] + 1]++;
        for (int c = 1; c < count.Length; c++) count[c] += count[c - 1];
        for (int i = 0; i < n; i++) sa[count[text[i]]++] = i;
        var symbols = text.ToArray();
        int classes = Renumber(sa, rank, i => symbols[i], (_, _) => true);
        for (int h = 1; classes < n; h <<= 1)
        {
            // Sort by (rank[i], rank[i + h]): the second keys' order first (suffixes shorter than h + 1 have none and
            // come first), then a stable counting sort by the first key.
            int k = 0;
            for (int i = n - h; i < n; i++) byRank[k++] = i;
            foreach (int i in sa)
                if (i >= h) byRank[k++] = i - h;
            Array.Clear(count);
            foreach (int r in rank) count[r + 1]++;
            for (int c = 1; c <= classes; c++) count[c] += count[c - 1];
            foreach (int i in byRank) sa[count[rank[i]]++] = i;
            int step = h;
            var r0 = rank;
            classes = Renumber(sa, next, i => r0[i],
                (a, b) => (a + step < n ? r0[a + step] : -1) == (b + step < n ? r0[b + step] : -1));
            (rank, next) = (next, rank);
        }
        return sa;
    }

    /// <summary>
    /// Ranks the sorted suffixes: a new class starts where the first key or the second key changes. Writes the ranks
    /// into <paramref name="into"/> and returns the number of classes.
    /// </summary>
    static int Renumber(int[] sa, int[] into, Func<int, int> first, Func<int, int, bool> sameSecond)
    {
        int classes = 0;
        for (int j = 0; j < sa.Length; j++)
        {
            if (j == 0 || first(sa[j]) != first(sa[j - 1]) || !sameSecond(sa[j], sa[j - 1])) classes++;
            into[sa[j]] = classes - 1;
        }
        return classes;
    }
}
