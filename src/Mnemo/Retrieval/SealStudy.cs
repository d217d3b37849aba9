using System.Diagnostics;
using Mnemo.Layers;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Retrieval;

/// <summary>A test query: the passage it belongs to and its text.</summary>
public sealed record RetrievalQuery(int Passage, string Text);

/// <summary>
/// One retriever on one kind of query: the share of queries whose passage is among the first k returned
/// (<see cref="SealStudy.Cutoffs"/>), the mean reciprocal rank over the first 100, and the seconds per query; for a
/// trained retriever also its final training loss, training time and parameters (null and 0 for BM25).
/// </summary>
public sealed record RetrievalScore(string Retriever, string Queries, int Seed, double[] Recall, double Mrr, double SecondsPerQuery,
    double? TrainLoss = null, double? TrainSeconds = null, long Parameters = 0);

/// <summary>
/// SEAL against BM25 on the New Testament (docs/retrieval.md): passages of the King James text are the documents;
/// each measured passage asks twice, once with the World English Bible's rendering of its held-out verse (a
/// paraphrase) and once with words cut from that verse's King James text (an excerpt).
/// </summary>
public static class SealStudy
{
    public static readonly int[] Cutoffs = [1, 5, 10, 100];
    public const string Paraphrase = "paraphrase", Excerpt = "excerpt";

    /// <summary>The measured passages (a sample of data.queries, by data.seed) with their two queries each.</summary>
    public static (List<RetrievalQuery> Paraphrases, List<RetrievalQuery> Excerpts) Queries(IReadOnlyList<Passage> passages,
        SealDataConfig d)
    {
        var rng = new Random(d.Seed + 1);
        var measured = d.Queries == 0 || d.Queries >= passages.Count
            ? passages.ToList()
            : [.. passages.OrderBy(_ => rng.Next()).Take(d.Queries).OrderBy(p => p.Id)];
        var paraphrases = measured.Select(p => new RetrievalQuery(p.Id, p.Verses[p.HeldOut].Paraphrase)).ToList();
        var excerpts = measured.Select(p =>
        {
            var words = p.Verses[p.HeldOut].Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            int take = Math.Min(d.ExcerptWords, words.Length), start = rng.Next(words.Length - take + 1);
            return new RetrievalQuery(p.Id, string.Join(' ', words, start, take));
        }).ToList();
        return (paraphrases, excerpts);
    }

    /// <summary>Recall at each cutoff and MRR@100 of ranked lists against each query's passage.</summary>
    public static (double[] Recall, double Mrr) Score(IReadOnlyList<RetrievalQuery> queries, IReadOnlyList<IReadOnlyList<int>> ranked)
    {
        var recall = new double[Cutoffs.Length];
        double mrr = 0;
        for (int q = 0; q < queries.Count; q++)
        {
            int rank = ranked[q].Take(100).ToList().IndexOf(queries[q].Passage);
            if (rank >= 0) mrr += 1.0 / (rank + 1);
            for (int i = 0; i < Cutoffs.Length; i++)
                if (rank >= 0 && rank < Cutoffs[i]) recall[i]++;
        }
        return ([.. recall.Select(r => r / queries.Count)], mrr / queries.Count);
    }

    public static List<RetrievalScore> Run(SealConfig c, IReadOnlyList<Passage> passages, IReadOnlyList<MixerKind> mixers,
        IReadOnlyList<int> seeds, Action<string>? log = null)
    {
        var (paraphrases, excerpts) = Queries(passages, c.Data);
        var sets = new[] { (Paraphrase, paraphrases), (Excerpt, excerpts) };
        var scores = new List<RetrievalScore>();
        using (var bm25 = new Bm25Index([.. passages.Select(p => p.Text)], c.Bm25.K1, c.Bm25.B))
            foreach (var (kind, queries) in sets)
            {
                var clock = Stopwatch.StartNew();
                var ranked = queries.Select(q => (IReadOnlyList<int>)[.. bm25.Search(q.Text, 100).Select(x => x.Document)]).ToList();
                var (recall, mrr) = Score(queries, ranked);
                scores.Add(new RetrievalScore("bm25", kind, 0, recall, mrr, clock.Elapsed.TotalSeconds / queries.Count));
                log?.Invoke($"bm25, {kind}: R@1 {100 * recall[0]:F1}%, R@10 {100 * recall[2]:F1}%");
            }
        log?.Invoke($"indexing {passages.Count:N0} passages for SEAL");
        var corpus = new SealCorpus(passages);
        log?.Invoke($"{corpus.Index.TokenCount:N0} tokens, vocabulary {corpus.Vocabulary:N0}");
        foreach (var mixer in mixers)
            foreach (int seed in seeds)
            {
                manual_seed(seed);
                var generator = new SealGenerator(corpus, c.Model with { Mixer = mixer }, c.Data.MaxSourceTokens);
                var clock = Stopwatch.StartNew();
                double loss = generator.Fit(c.Training with { Seed = seed }, c.SupervisedShare, c.Search.MaxNgram,
                    (step, l) => log?.Invoke($"{Names.Of(mixer)} seed {seed}: step {step}/{c.Training.Steps}, loss {l:F3}"));
                double trainSeconds = clock.Elapsed.TotalSeconds;
                log?.Invoke($"{Names.Of(mixer)} seed {seed}: trained {c.Training.Steps} steps in {trainSeconds:F0} s, loss {loss:F3}");
                var search = new SealSearch(corpus, generator, c.Search);
                foreach (var (kind, queries) in sets)
                {
                    clock.Restart();
                    var ranked = new List<IReadOnlyList<int>>();
                    foreach (var q in queries)
                    {
                        using (GcQuiet.Enter())
                            ranked.Add([.. search.Search(q.Text, Clip(corpus.Encode(q.Text), c.Data.MaxSourceTokens), 100)
                                .Select(x => x.Document)]);
                        if (ranked.Count % 100 == 0 && ranked.Count < queries.Count)
                            log?.Invoke($"seal ({Names.Of(mixer)}) seed {seed}, {kind}: {ranked.Count}/{queries.Count} queries");
                    }
                    var (recall, mrr) = Score(queries, ranked);
                    scores.Add(new RetrievalScore($"seal ({Names.Of(mixer)})", kind, seed, recall, mrr,
                        clock.Elapsed.TotalSeconds / queries.Count, loss, trainSeconds, generator.Model.ParameterCount()));
                    log?.Invoke($"seal ({Names.Of(mixer)}) seed {seed}, {kind}: R@1 {100 * recall[0]:F1}%, R@10 {100 * recall[2]:F1}%");
                }
                generator.Model.Dispose();
            }
        return scores;
    }

    static int[] Clip(int[] source, int max) => source.Length <= max ? source : source[..max];
}
