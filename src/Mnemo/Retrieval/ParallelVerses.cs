namespace Mnemo.Retrieval;

/// <summary>One verse in two translations: its reference ("John 3:16"), the indexed text and the paraphrase.</summary>
public sealed record Verse(string Reference, string Book, int Chapter, string Text, string Paraphrase);

/// <summary>
/// Consecutive verses of one chapter: a retrieval document. <see cref="HeldOut"/> is the verse whose paraphrase is
/// this passage's test query and is never a training query (docs/retrieval.md#passages-and-queries).
/// </summary>
public sealed record Passage(int Id, IReadOnlyList<Verse> Verses, int HeldOut)
{
    public string Text => string.Join(' ', Verses.Select(v => v.Text));
    public string Name => Verses.Count == 1 ? Verses[0].Reference : $"{Verses[0].Reference}–{Verses[^1].Reference.Split(':')[^1]}";
}

/// <summary>
/// The New Testament verse by verse in the King James Version (the indexed text) and the World English Bible (its
/// paraphrase), as scripts/setup-corpora.sh exports them (nt-kjv.tsv, nt-web.tsv: "Book C:V&lt;TAB&gt;text"), and
/// the passages cut from them.
/// </summary>
public static class ParallelVerses
{
    public const string TextFile = "nt-kjv.tsv";
    public const string ParaphraseFile = "nt-web.tsv";

    /// <summary>
    /// The verses present in both files with text in both, in the indexed file's order, optionally only those of
    /// <paramref name="books"/> (book names as in the files: "Matthew", "1 Corinthians").
    /// </summary>
    public static List<Verse> Load(IReadOnlyCollection<string> books, string? folder = null)
    {
        folder ??= Text.Corpora.Folder() ?? throw new MnemoException(
            $"the verse-aligned New Testament is not set up (no data/corpora folder and no ${Text.Corpora.FolderVariable}); " +
            "run scripts/setup-corpora.sh as root");
        string textPath = Path.Combine(folder, TextFile), paraphrasePath = Path.Combine(folder, ParaphraseFile);
        foreach (var path in new[] { textPath, paraphrasePath })
            if (!File.Exists(path))
                throw new MnemoException($"{path} does not exist; run scripts/setup-corpora.sh as root to export the New Testament");
        var paraphrases = Read(paraphrasePath).ToDictionary(v => v.Reference, v => v.Text, StringComparer.Ordinal);
        var verses = Align(Read(textPath), paraphrases);
        var known = verses.Select(v => v.Book).ToHashSet(StringComparer.Ordinal);
        foreach (var book in books)
            if (!known.Contains(book))
                throw new MnemoException($"data.books: no book \"{book}\" in {textPath} (books: {string.Join(", ", known)})");
        return books.Count == 0 ? verses : verses.Where(v => books.Contains(v.Book)).ToList();
    }

    /// <summary>The verses of the indexed text that have a non-empty paraphrase.</summary>
    public static List<Verse> Align(IEnumerable<(string Reference, string Text)> text, IReadOnlyDictionary<string, string> paraphrases)
    {
        var verses = new List<Verse>();
        foreach (var (reference, t) in text)
        {
            if (t.Length == 0 || !paraphrases.TryGetValue(reference, out var p) || p.Length == 0) continue;
            var (book, chapter) = Split(reference);
            verses.Add(new Verse(reference, book, chapter, t, p));
        }
        return verses;
    }

    /// <summary>
    /// Passages of <paramref name="size"/> consecutive verses within each chapter (a chapter's last passage may be
    /// shorter), each with one held-out verse drawn from <paramref name="seed"/>.
    /// </summary>
    public static List<Passage> Passages(IReadOnlyList<Verse> verses, int size, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var rng = new Random(seed);
        var passages = new List<Passage>();
        foreach (var chapter in verses.GroupBy(v => (v.Book, v.Chapter)))
            foreach (var group in chapter.Chunk(size))
                passages.Add(new Passage(passages.Count, group, rng.Next(group.Length)));
        return passages;
    }

    static IEnumerable<(string Reference, string Text)> Read(string path)
    {
        int line = 0;
        foreach (var row in File.ReadLines(path))
        {
            line++;
            if (row.Length == 0) continue;
            int tab = row.IndexOf('\t');
            if (tab <= 0) throw new MnemoException($"{path}:{line}: expected \"Book C:V<TAB>text\"");
            yield return (row[..tab], row[(tab + 1)..].Trim());
        }
    }

    static (string Book, int Chapter) Split(string reference)
    {
        int space = reference.LastIndexOf(' '), colon = reference.LastIndexOf(':');
        if (space <= 0 || colon < space || !int.TryParse(reference[(space + 1)..colon], out int chapter))
            throw new MnemoException($"verse reference \"{reference}\" is not \"Book C:V\"");
        return (reference[..space], chapter);
    }
}
