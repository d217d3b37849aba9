namespace Mnemo.Retrieval;

/// <summary>
/// An FM-index (Ferragina and Manzini 2000) over a collection of documents of token ids, as SEAL uses it
/// (docs/retrieval.md#the-fm-index): it counts the occurrences of any n-gram, lists the tokens that follow an n-gram
/// somewhere in the collection (what constrained decoding may emit next), and finds the documents an n-gram occurs in.
/// <para>
/// It indexes the reversed collection R = $ rev(d_{m−1}) $ … $ rev(d_0) $, with $ = symbol 0 and token t stored as
/// t + 1, so no n-gram crosses a document boundary. An n-gram's occurrences in the documents are the suffixes of R that
/// start with the reversed n-gram: one contiguous range of R's suffix array, reached by backward search, one step per
/// token in reading order, so extending an n-gram by a token to its right is one more step. The symbols of R's
/// Burrows–Wheeler transform in that range, BWT[i] = R[SA[i] − 1], are then the tokens that follow the n-gram.
/// </para>
/// </summary>
public sealed class FmIndex
{
    readonly int[] _suffixes;        // R's suffix array: where each sorted suffix starts in R
    readonly int[] _before;          // C[c]: suffixes of R that start with a symbol smaller than c
    readonly WaveletMatrix _bwt;
    readonly int[] _documentEnds;    // in R, ascending: the $ that closes each reversed document (document m − 1 − j)

    /// <summary>The documents, in the order given.</summary>
    public IReadOnlyList<int[]> Documents { get; }

    /// <summary>Tokens are in [0, Vocabulary).</summary>
    public int Vocabulary { get; }

    /// <summary>Tokens in all documents (separators not counted): SEAL's N in P(n) = (F(n) + 5) / (N + 5).</summary>
    public long TokenCount { get; }

    public FmIndex(IReadOnlyList<int[]> documents, int vocabulary)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabulary, 1);
        Documents = documents;
        Vocabulary = vocabulary;
        TokenCount = documents.Sum(d => (long)d.Length);
        if (TokenCount + documents.Count + 1 > int.MaxValue)
            throw new MnemoException($"the FM-index holds at most {int.MaxValue:N0} tokens; these documents have {TokenCount:N0}");
        var r = new int[TokenCount + documents.Count + 1];
        _documentEnds = new int[documents.Count];
        int at = 1;                                                                     // r[0] = $
        for (int j = 0; j < documents.Count; j++)
        {
            var d = documents[documents.Count - 1 - j];
            for (int i = d.Length - 1; i >= 0; i--)
            {
                if ((uint)d[i] >= (uint)vocabulary)
                    throw new MnemoException(
                        $"document {documents.Count - 1 - j}: token {d[i]} is outside the vocabulary [0, {vocabulary})");
                r[at++] = d[i] + 1;
            }
            _documentEnds[j] = at++;                                                    // r[at] = $
        }
        _suffixes = SuffixArray.Build(r);
        var bwt = new int[r.Length];
        for (int i = 0; i < r.Length; i++) bwt[i] = _suffixes[i] == 0 ? 0 : r[_suffixes[i] - 1];
        _bwt = new WaveletMatrix(bwt, vocabulary + 1);
        _before = new int[vocabulary + 2];
        foreach (int s in r) _before[s + 1]++;
        for (int c = 1; c < _before.Length; c++) _before[c] += _before[c - 1];
    }

    /// <summary>The range of every occurrence: all suffixes of R (the empty n-gram occurs everywhere).</summary>
    public (int Start, int End) All => (0, _suffixes.Length);

    /// <summary>The range of an n-gram extended on the right by <paramref name="token"/>, from the n-gram's
    /// <paramref name="range"/>.</summary>
    public (int Start, int End) Extend((int Start, int End) range, int token)
    {
        if ((uint)token >= (uint)Vocabulary) return (0, 0);
        int c = token + 1;
        return (_before[c] + _bwt.Rank(c, range.Start), _before[c] + _bwt.Rank(c, range.End));
    }

    /// <summary>The suffix-array range of an n-gram's occurrences; empty when it does not occur.</summary>
    public (int Start, int End) RangeOf(ReadOnlySpan<int> ngram)
    {
        var range = All;
        foreach (int t in ngram)
        {
            range = Extend(range, t);
            if (range.Start >= range.End) return (0, 0);
        }
        return range;
    }

    /// <summary>F(n): how many times the n-gram occurs in the documents (the empty n-gram: <see cref="TokenCount"/>).</summary>
    public int Count(ReadOnlySpan<int> ngram)
    {
        if (ngram.IsEmpty) return (int)TokenCount;
        var (start, end) = RangeOf(ngram);
        return end - start;
    }

    /// <summary>
    /// The tokens that follow the n-gram of <paramref name="range"/> somewhere in the documents, increasing, with how
    /// often; for the empty n-gram (<see cref="All"/>) every token that occurs.
    /// </summary>
    public List<(int Token, int Count)> Next((int Start, int End) range)
    {
        var next = new List<(int, int)>();
        foreach (var (symbol, count) in _bwt.Distinct(range.Start, range.End))
            if (symbol != 0) next.Add((symbol - 1, count));
        return next;
    }

    /// <summary>The documents the n-gram of <paramref name="range"/> occurs in (each once), in increasing order.</summary>
    public int[] DocumentsOf((int Start, int End) range)
    {
        var found = new SortedSet<int>();
        for (int i = range.Start; i < range.End; i++)
        {
            int j = Array.BinarySearch(_documentEnds, _suffixes[i]);                    // the first end after the start
            if (j < 0) j = ~j;
            found.Add(Documents.Count - 1 - j);
        }
        return [.. found];
    }
}
