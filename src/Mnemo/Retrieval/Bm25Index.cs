using Lucene.Net.Analysis;
using Lucene.Net.Analysis.En;
using Lucene.Net.Analysis.TokenAttributes;
using Lucene.Net.Documents;
using Lucene.Net.Index;
using Lucene.Net.Search;
using Lucene.Net.Search.Similarities;
using Lucene.Net.Store;
using Lucene.Net.Util;
using LuceneDocument = Lucene.Net.Documents.Document;

namespace Mnemo.Retrieval;

/// <summary>
/// BM25 retrieval through Lucene.NET (docs/retrieval.md#bm25), as Pyserini runs it for the SEAL paper's baseline:
/// Lucene's English analyzer (lower case, English stop words, Porter stemming), BM25 with k1 and b (Pyserini's
/// defaults 0.9 and 0.4), and a bag-of-words query whose terms are weighted by how often they occur in it. Lucene
/// stores each document's length in one byte (as 1/√length), so its scores use a rounded length; the ranking is
/// otherwise the textbook BM25 with idf = ln(1 + (N − n + 0.5) / (n + 0.5)).
/// </summary>
public sealed class Bm25Index : IDisposable
{
    const LuceneVersion Version = LuceneVersion.LUCENE_48;
    const string Text = "text";

    readonly RAMDirectory _directory = new();
    readonly Analyzer _analyzer = new EnglishAnalyzer(Version);
    readonly DirectoryReader _reader;
    readonly IndexSearcher _searcher;

    public int Count { get; }

    public Bm25Index(IReadOnlyList<string> documents, double k1 = 0.9, double b = 0.4)
    {
        if (!(k1 >= 0) || !(b >= 0 && b <= 1)) throw new MnemoException($"BM25 needs k1 ≥ 0 and b in [0, 1], got k1 = {k1}, b = {b}");
        var similarity = new BM25Similarity((float)k1, (float)b);
        using (var writer = new IndexWriter(_directory, new IndexWriterConfig(Version, _analyzer) { Similarity = similarity }))
        {
            for (int i = 0; i < documents.Count; i++)
                writer.AddDocument(new LuceneDocument
                {
                    new StoredField("id", i),
                    new TextField(Text, documents[i], Field.Store.NO),
                });
            writer.Commit();
        }
        _reader = DirectoryReader.Open(_directory);
        _searcher = new IndexSearcher(_reader) { Similarity = similarity };
        Count = documents.Count;
    }

    /// <summary>The analyzed terms of a text (what the index and the queries are made of).</summary>
    public IReadOnlyList<string> Terms(string text)
    {
        var terms = new List<string>();
        using var stream = _analyzer.GetTokenStream(Text, text);
        var term = stream.AddAttribute<ICharTermAttribute>();
        stream.Reset();
        while (stream.IncrementToken()) terms.Add(term.ToString());
        stream.End();
        return terms;
    }

    /// <summary>The best <paramref name="k"/> documents for the query (indices into the documents given), with their scores.</summary>
    public List<(int Document, double Score)> Search(string query, int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        var bag = new BooleanQuery();
        foreach (var g in Terms(query).GroupBy(t => t, StringComparer.Ordinal))
            bag.Add(new TermQuery(new Term(Text, g.Key)) { Boost = g.Count() }, Occur.SHOULD);
        var found = new List<(int, double)>();
        if (bag.Clauses.Count == 0) return found;
        foreach (var hit in _searcher.Search(bag, Math.Min(k, Count)).ScoreDocs)
            found.Add((_searcher.Doc(hit.Doc).GetField("id").GetInt32Value()!.Value, hit.Score));
        return found;
    }

    public void Dispose()
    {
        _reader.Dispose();
        _analyzer.Dispose();
        _directory.Dispose();
    }
}
