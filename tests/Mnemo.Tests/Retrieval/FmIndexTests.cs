using Mnemo.Retrieval;

namespace Mnemo.Tests.Retrieval;

/// <summary>The suffix array, the wavelet matrix and the FM-index against naive scans of the same text.</summary>
public class FmIndexTests
{
    static int Compare(int[] text, int a, int b)
    {
        for (; a < text.Length && b < text.Length; a++, b++)
            if (text[a] != text[b]) return text[a].CompareTo(text[b]);
        return (text.Length - a).CompareTo(text.Length - b);                             // the shorter suffix first
    }

    [Theory]
    [InlineData(0, 2, 1)]
    [InlineData(1, 2, 2)]
    [InlineData(7, 1, 3)]                                                               // one symbol repeated: every round needed
    [InlineData(200, 2, 4)]
    [InlineData(500, 5, 5)]
    [InlineData(300, 1000, 6)]
    public void The_suffix_array_sorts_the_suffixes(int length, int alphabet, int seed)
    {
        var rng = new Random(seed);
        int[] text = [.. Enumerable.Range(0, length).Select(_ => rng.Next(alphabet))];
        int[] expected = [.. Enumerable.Range(0, length)];
        Array.Sort(expected, (a, b) => Compare(text, a, b));
        Assert.Equal(expected, SuffixArray.Build(text));
    }

    [Theory]
    [InlineData(1, 50)]
    [InlineData(2, 64)]
    [InlineData(5, 129)]
    [InlineData(300, 1000)]
    public void The_wavelet_matrix_ranks_and_lists_like_a_scan(int alphabet, int length)
    {
        var rng = new Random(alphabet);
        int[] symbols = [.. Enumerable.Range(0, length).Select(_ => rng.Next(alphabet))];
        var wm = new WaveletMatrix(symbols, alphabet);
        for (int trial = 0; trial < 200; trial++)
        {
            int c = rng.Next(alphabet), end = rng.Next(length + 1), start = rng.Next(end + 1);
            Assert.Equal(symbols.Take(end).Count(s => s == c), wm.Rank(c, end));
            var expected = symbols[start..end].GroupBy(s => s).OrderBy(g => g.Key).Select(g => (g.Key, g.Count())).ToList();
            Assert.Equal(expected, wm.Distinct(start, end));
        }
    }

    [Fact]
    public void A_symbol_outside_the_alphabet_is_refused() =>
        Assert.Throws<ArgumentException>(() => new WaveletMatrix([0, 3], 3));

    static List<int[]> Documents(Random rng, int count, int vocabulary) =>
        [.. Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, rng.Next(0, 30)).Select(_ => rng.Next(vocabulary)).ToArray())];

    static IEnumerable<int> Starts(int[] d, int[] ngram) =>
        Enumerable.Range(0, Math.Max(0, d.Length - ngram.Length + 1)).Where(i => d.AsSpan(i, ngram.Length).SequenceEqual(ngram));

    [Theory]
    [InlineData(1, 3)]
    [InlineData(2, 6)]
    [InlineData(3, 40)]
    public void The_fm_index_counts_continues_and_locates_ngrams_like_a_scan(int seed, int vocabulary)
    {
        var rng = new Random(seed);
        var docs = Documents(rng, 25, vocabulary);
        var index = new FmIndex(docs, vocabulary);
        Assert.Equal(docs.Sum(d => d.Length), index.TokenCount);
        Assert.Equal(docs.SelectMany(d => d).GroupBy(t => t).OrderBy(g => g.Key).Select(g => (g.Key, g.Count())),
            index.Next(index.All));
        for (int trial = 0; trial < 300; trial++)
        {
            // Half the n-grams are cut from a document (they occur), half are random (they mostly do not).
            int[] ngram;
            var source = docs[rng.Next(docs.Count)];
            if (trial % 2 == 0 && source.Length > 0)
            {
                int start = rng.Next(source.Length), n = 1 + rng.Next(Math.Min(6, source.Length - start));
                ngram = source[start..(start + n)];
            }
            else ngram = [.. Enumerable.Range(0, 1 + rng.Next(3)).Select(_ => rng.Next(vocabulary))];
            Assert.Equal(docs.Sum(d => Starts(d, ngram).Count()), index.Count(ngram));
            var range = index.RangeOf(ngram);
            var following = docs.SelectMany(d => Starts(d, ngram).Where(i => i + ngram.Length < d.Length).Select(i => d[i + ngram.Length]))
                .GroupBy(t => t).OrderBy(g => g.Key).Select(g => (g.Key, g.Count()));
            Assert.Equal(following, index.Next(range));
            Assert.Equal(Enumerable.Range(0, docs.Count).Where(j => Starts(docs[j], ngram).Any()), index.DocumentsOf(range));
        }
    }

    [Fact]
    public void An_ngram_never_spans_two_documents()
    {
        var index = new FmIndex([[0, 1], [2, 3]], 4);
        Assert.Equal(0, index.Count([1, 2]));
        Assert.Empty(index.Next(index.RangeOf([1])));                                 // 1 ends its document
        Assert.Equal([(3, 1)], index.Next(index.RangeOf([2])));
        Assert.Equal(4, index.Next(index.RangeOf([])).Count);                          // the empty n-gram: every token
    }

    [Fact]
    public void A_token_outside_the_vocabulary_names_its_document()
    {
        var e = Assert.Throws<MnemoException>(() => new FmIndex([[0], [1, 7]], 4));
        Assert.Contains("document 1", e.Message);
    }
}
