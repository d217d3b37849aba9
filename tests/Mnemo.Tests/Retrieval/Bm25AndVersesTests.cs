using Mnemo.Retrieval;

namespace Mnemo.Tests.Retrieval;

/// <summary>BM25 through Lucene against the formula by hand, and the verse alignment and passages.</summary>
public class Bm25AndVersesTests
{
    [Fact]
    public void Bm25_scores_are_the_formula_with_pyserinis_constants()
    {
        // Analyzed lengths 1, 4 and 4 (Lucene stores 1/√length in a byte; 1 and 4 are exact there).
        string[] docs = ["cat", "cat dog bird fish", "dog dog dog dog"];
        using var index = new Bm25Index(docs, k1: 0.9, b: 0.4);
        double avg = 9 / 3.0;
        double Score(double tf, double df, double length) =>
            Math.Log(1 + (3 - df + 0.5) / (df + 0.5)) * tf * (0.9 + 1) / (tf + 0.9 * (1 - 0.4 + 0.4 * length / avg));
        var cat = index.Search("cat", 10);
        Assert.Equal([0, 1], cat.Select(h => h.Document));
        Assert.Equal(Score(1, 2, 1), cat[0].Score, 5);
        Assert.Equal(Score(1, 2, 4), cat[1].Score, 5);
        var dog = index.Search("the dogs", 10);                                       // stop word dropped, plural stemmed
        Assert.Equal([2, 1], dog.Select(h => h.Document));
        Assert.Equal(Score(4, 2, 4), dog[0].Score, 5);
        // A word twice in the query counts twice.
        Assert.Equal(2 * Score(1, 2, 1), index.Search("cat cat", 10)[0].Score, 5);
        Assert.Empty(index.Search("the and of", 10));
    }

    [Fact]
    public void The_analyzer_stems_and_drops_stop_words()
    {
        using var index = new Bm25Index(["x"]);
        var terms = index.Terms("The Cats were RUNNING to Jerusalem");
        Assert.Contains("cat", terms);
        Assert.Contains("run", terms);
        Assert.Contains("jerusalem", terms);
        Assert.DoesNotContain("the", terms);
        Assert.DoesNotContain("to", terms);
    }

    [Fact]
    public void Bad_bm25_constants_are_refused() =>
        Assert.Contains("k1", Assert.Throws<MnemoException>(() => new Bm25Index(["x"], k1: -1)).Message);

    [Fact]
    public void Verses_align_by_reference_and_passages_stay_within_a_chapter()
    {
        var text = new[] { ("John 1:1", "In the beginning"), ("John 1:2", "The same"), ("John 1:3", "All things"),
            ("John 2:1", "And the third day"), ("Acts 8:37", "And Philip said") };
        var paraphrases = new Dictionary<string, string>
        {
            ["John 1:1"] = "In the beginning was", ["John 1:2"] = "He was", ["John 1:3"] = "All things were",
            ["John 2:1"] = "The third day", ["Acts 8:37"] = "",                              // omitted in the paraphrase
        };
        var verses = ParallelVerses.Align(text, paraphrases);
        Assert.Equal(["John 1:1", "John 1:2", "John 1:3", "John 2:1"], verses.Select(v => v.Reference));
        Assert.Equal(("John", 2), (verses[3].Book, verses[3].Chapter));
        var passages = ParallelVerses.Passages(verses, 2, seed: 1);
        Assert.Equal([2, 1, 1], passages.Select(p => p.Verses.Count));
        Assert.Equal(["John 1:1–2", "John 1:3", "John 2:1"], passages.Select(p => p.Name));
        Assert.All(passages, p => Assert.InRange(p.HeldOut, 0, p.Verses.Count - 1));
        Assert.Equal(passages.Select(p => p.HeldOut), ParallelVerses.Passages(verses, 2, seed: 1).Select(p => p.HeldOut));
        Assert.Equal("In the beginning The same", passages[0].Text);
    }

    [Fact]
    public void Missing_exports_name_the_file_and_the_script()
    {
        using var dir = new Tmp.Dir();
        var e = Assert.Throws<MnemoException>(() => ParallelVerses.Load([], dir.Path));
        Assert.Contains(ParallelVerses.TextFile, e.Message);
        Assert.Contains("setup-corpora.sh", e.Message);
    }

    [Fact]
    public void An_unknown_book_is_named()
    {
        using var dir = new Tmp.Dir();
        File.WriteAllText(dir[ParallelVerses.TextFile], "John 1:1\tIn the beginning\n");
        File.WriteAllText(dir[ParallelVerses.ParaphraseFile], "John 1:1\tIn the beginning was\n");
        Assert.Single(ParallelVerses.Load([], dir.Path));
        var e = Assert.Throws<MnemoException>(() => ParallelVerses.Load(["Jhon"], dir.Path));
        Assert.Contains("\"Jhon\"", e.Message);
    }
}
