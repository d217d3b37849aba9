using Mnemo.Layers;
using Mnemo.Retrieval;
using Mnemo.Tests.Memory;
using Mnemo.Text;
using static TorchSharp.torch;

namespace Mnemo.Tests.Retrieval;

/// <summary>
/// SEAL's parts on a tiny corpus with a word-per-token tokenizer: the n-gram weight against its formula, the
/// intersective document score worked by hand, the constrained beam search (every key occurs in the corpus, and its
/// score is the teacher-forced log-probability), the query's own keys, and the recall metric.
/// </summary>
[Collection(TorchCollection.Name)]
public class SealTests
{
    /// <summary>Words are tokens; spaces are dropped, so " a b" and "a b" encode alike.</summary>
    sealed class Words : ITokenizer
    {
        readonly List<string> _words = [];
        public int VocabSize => 1000;
        public int[] Encode(string text) => [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(Id)];
        public string Decode(IEnumerable<int> ids) => string.Join(' ', ids.Select(i => _words[i]));
        int Id(string w)
        {
            int i = _words.IndexOf(w);
            if (i < 0) { _words.Add(w); i = _words.Count - 1; }
            return i;
        }
    }

    static Passage P(int id, params string[] verses) =>
        new(id, [.. verses.Select((v, i) => new Verse($"Book 1:{id * 10 + i + 1}", "Book", 1, v, "para " + v))], 0);

    static (SealCorpus Corpus, SealSearch Search) Build(IReadOnlyList<Passage> passages, SealSearchConfig? c = null)
    {
        var (corpus, _, search) = BuildWithGenerator(passages, c);
        return (corpus, search);
    }

    static (SealCorpus, SealGenerator, SealSearch) BuildWithGenerator(IReadOnlyList<Passage> passages, SealSearchConfig? c = null)
    {
        var corpus = new SealCorpus(passages, new Words());
        manual_seed(0);
        var model = new ModelConfig { DModel = 16, NumLayers = 1, NumHeads = 2, Mixer = MixerKind.Attention, MaxPositions = 64 };
        var generator = new SealGenerator(corpus, model, 32);
        generator.Model.eval();
        return (corpus, generator, new SealSearch(corpus, generator, c ?? new SealSearchConfig()));
    }

    static int[] Ids(SealCorpus corpus, string words) => corpus.Encode(words);

    [Fact]
    public void The_weight_is_the_positive_log_odds_to_the_power_alpha()
    {
        var (corpus, search) = Build([P(0, "a b c d e f g h")]);                    // N = 8 tokens
        double pn = (2 + 5.0) / (8 + 5), pq = 0.9;
        double odds = Math.Log(pq * (1 - pn) / (pn * (1 - pq)));
        Assert.Equal(odds * odds, search.Weight(Math.Log(pq), 2), 9);
        Assert.Equal(odds, search.Weight(Math.Log(pq), 2, exponent: false), 9);
        Assert.Equal(0, search.Weight(Math.Log(0.3), 2));                            // less likely than in the corpus
        Assert.Equal(0, search.Weight(Math.Log(pq), 0));                             // not in the corpus
        Assert.True(double.IsFinite(search.Weight(0, 1)));                             // P(n|q) = 1 stays finite
        Assert.Equal(8, corpus.Index.TokenCount);
    }

    [Fact]
    public void The_intersective_score_skips_overlaps_and_discounts_counted_tokens()
    {
        var (corpus, search) = Build([P(0, "a b c d"), P(1, "a b x y"), P(2, "a b z b c")]);
        SealKey Key(string words, double w) => new(Ids(corpus, words), -1, corpus.Index.Count(Ids(corpus, words)), w);
        // Document 0: "a b c" (4) claims a, b, c, so "a b" overlaps and is skipped: 4.
        // Document 1: "a b" (3) and "x y" (2), disjoint: 5.
        // Document 2: "a b" (3) at 0; "b c" (2) at 3 shares b: 2 · (1 − 0.8 + 0.8 · ½) = 1.2: 4.2.
        var ranked = search.Rank([Key("a b c", 4), Key("a b", 3), Key("x y", 2), Key("b c", 2)], null, 10);
        Assert.Equal([1, 2, 0], ranked.Select(r => r.Document));
        Assert.Equal([5, 4.2, 4], ranked.Select(r => Math.Round(r.Score, 9)));
    }

    [Fact]
    public void Unigrams_credit_the_unclaimed_tokens_once_each()
    {
        var (corpus, search) = Build([P(0, "a b a c")]);
        var unigrams = new double[corpus.TextVocabulary];
        unigrams[Ids(corpus, "a")[0]] = 1;
        unigrams[Ids(corpus, "c")[0]] = 0.5;
        var key = new SealKey(Ids(corpus, "b"), -1, 1, 2);
        // "b" (2) claims position 1; unclaimed a (twice, once credited) and c: 2 + 1 + 0.5.
        Assert.Equal(3.5, search.Rank([key], unigrams, 1)[0].Score, 12);
    }

    [Fact]
    public void Generated_keys_occur_in_the_corpus_and_score_their_teacher_forced_probability()
    {
        var passages = new[] { P(0, "the lord is my shepherd", "i shall not want"), P(1, "the light shineth in darkness"),
            P(2, "in the beginning was the word") };
        var (corpus, generator, search) = BuildWithGenerator(passages, new SealSearchConfig { Beam = 3, MaxNgram = 4 });
        int[] query = Ids(corpus, "the word was light");
        var (keys, first) = search.Generate(query);
        Assert.Equal(corpus.Vocabulary, first.Length);
        Assert.NotEmpty(keys);
        Assert.Equal(keys.Count, keys.Select(k => string.Join(',', k.Tokens)).Distinct().Count());
        Assert.All(keys, k => Assert.InRange(k.Tokens.Length, 1, 4));
        Assert.All(keys, k => Assert.Equal(corpus.Index.Count(k.Tokens), k.Count));
        Assert.All(keys, k => Assert.True(k.Count > 0));
        Assert.Contains(keys, k => k.Tokens.Length == 4);
        // Each step keeps at most 2·beam keys.
        Assert.All(keys.GroupBy(k => k.Tokens.Length), g => Assert.True(g.Count() <= 6));
        var rescored = generator.LogProbs(query, [.. keys.Select(k => k.Tokens)]);
        for (int i = 0; i < keys.Count; i++) Assert.Equal(keys[i].LogProb, rescored[i], 4);
    }

    [Fact]
    public void The_query_adds_its_own_ngrams_that_occur()
    {
        var (corpus, search) = Build([P(0, "Jesus wept"), P(1, "and Jesus said unto them")]);
        var keys = search.QueryKeys("Jesus said, unto you", Ids(corpus, "Jesus said unto"), []);
        var texts = keys.Select(k => corpus.Decode(k.Tokens)).ToHashSet();
        Assert.Contains("Jesus said", texts);                                          // the comma is stripped
        Assert.Contains("Jesus said unto", texts);
        Assert.Contains("unto", texts);
        Assert.DoesNotContain("you", texts);                                            // not in the corpus
        Assert.DoesNotContain("said unto you", texts);
        Assert.All(keys, k => Assert.True(k.LogProb < 0));
    }

    [Fact]
    public void Recall_and_mrr_count_the_rank_of_each_querys_passage()
    {
        var queries = new[] { new RetrievalQuery(3, "x"), new RetrievalQuery(5, "y"), new RetrievalQuery(7, "z") };
        IReadOnlyList<int>[] ranked = [[3, 1], [1, 2, 3, 4, 5], [1]];                     // ranks 1, 5 and missing
        var (recall, mrr) = SealStudy.Score(queries, ranked);
        Assert.Equal([1 / 3.0, 2 / 3.0, 2 / 3.0, 2 / 3.0], recall);
        Assert.Equal((1 + 0.2) / 3, mrr, 12);
    }

    [Fact]
    public void Scores_without_training_write_as_json()
    {
        var bm25 = new RetrievalScore("bm25", SealStudy.Paraphrase, 0, [0.5, 1, 1, 1], 0.75, 0.001);
        var json = System.Text.Json.JsonSerializer.Serialize(bm25, Mnemo.IO.ConfigBinder.WriteOptions);
        Assert.Contains("\"train_loss\":null", json.Replace(" ", ""));
    }

    [Fact]
    public void Training_pairs_never_ask_with_a_held_out_paraphrase_and_the_loss_falls()
    {
        var passages = Enumerable.Range(0, 6).Select(i => new Passage(i,
            [.. Enumerable.Range(0, 3).Select(v => new Verse($"B {i}:{v}", "B", i, $"w{i} x{v} y{i}{v} z", $"p{i}{v} w{i} q"))],
            HeldOut: i % 3)).ToList();
        var corpus = new SealCorpus(passages, new Words());
        manual_seed(1);
        var generator = new SealGenerator(corpus, new ModelConfig { DModel = 16, NumLayers = 1, NumHeads = 2, MaxPositions = 64 }, 32);
        var rng = new Random(2);
        var held = passages.Select(p => corpus.Encode(p.Verses[p.HeldOut].Paraphrase)).Select(s => string.Join(',', s)).ToHashSet();
        for (int i = 0; i < 300; i++)
        {
            var pair = generator.Draw(rng, 1, 2);
            Assert.DoesNotContain(string.Join(',', pair.Source), held);
            Assert.Equal(2, pair.Target.Length);
        }
        var t = new Mnemo.Training.TrainingConfig { Steps = 60, BatchSize = 16, Lr = 1e-2, WarmupSteps = 5, Seed = 3 };
        var draws = new Random(9);
        var batch = Enumerable.Range(0, 32).Select(_ => generator.Draw(draws, 0.5, 2)).ToList();
        using var scope = NewDisposeScope();
        double before = generator.Loss(batch).item<float>();
        generator.Fit(t, 0.5, 2);
        Assert.True(generator.Loss(batch).item<float>() < before - 0.5, "the generator did not learn");
    }
}
