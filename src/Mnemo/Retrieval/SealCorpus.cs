using Mnemo.Text;

namespace Mnemo.Retrieval;

/// <summary>
/// The passages as token ids for SEAL (docs/retrieval.md#seal): GPT-2's BPE renumbered densely over the tokens that
/// occur in the passages or their verses' paraphrases (so the generator's head is the size of this vocabulary, not
/// 50 257), two marker ids after them, and the FM-index over the passages.
/// </summary>
public sealed class SealCorpus
{
    readonly Dictionary<int, int> _fromGpt2 = [];
    readonly List<int> _toGpt2 = [];
    readonly ITokenizer _bpe;

    public IReadOnlyList<Passage> Passages { get; }

    /// <summary>Each passage's tokens; <see cref="VerseStarts"/>[p][i] is where verse i starts in them.</summary>
    public IReadOnlyList<int[]> Tokens { get; }
    public IReadOnlyList<int[]> VerseStarts { get; }

    public FmIndex Index { get; }

    /// <summary>Ids in [0, TextVocabulary) are BPE tokens; then <see cref="Unknown"/> and <see cref="Separator"/>.</summary>
    public int TextVocabulary => _toGpt2.Count;
    public int Unknown => TextVocabulary;
    public int Separator => TextVocabulary + 1;
    public int Vocabulary => TextVocabulary + 2;

    public SealCorpus(IReadOnlyList<Passage> passages, ITokenizer? tokenizer = null)
    {
        if (passages.Count == 0) throw new MnemoException("no passages to index");
        _bpe = tokenizer ?? Gpt2Tokenizer.Instance;
        Passages = passages;
        var bpe = passages.Select(p => p.Verses.Select((v, i) => _bpe.Encode(i == 0 ? v.Text : " " + v.Text)).ToArray()).ToArray();
        foreach (var verses in bpe) foreach (var verse in verses) foreach (int t in verse) Add(t);
        foreach (var p in passages) foreach (var v in p.Verses) foreach (int t in _bpe.Encode(v.Paraphrase)) Add(t);
        Tokens = bpe.Select(verses => verses.SelectMany(v => v).Select(t => _fromGpt2[t]).ToArray()).ToArray();
        VerseStarts = bpe.Select(verses =>
        {
            var starts = new int[verses.Length];
            for (int i = 1; i < verses.Length; i++) starts[i] = starts[i - 1] + verses[i - 1].Length;
            return starts;
        }).ToArray();
        Index = new FmIndex(Tokens, TextVocabulary);
    }

    void Add(int gpt2)
    {
        if (_fromGpt2.ContainsKey(gpt2)) return;
        _fromGpt2[gpt2] = _toGpt2.Count;
        _toGpt2.Add(gpt2);
    }

    /// <summary>Text as ids of this vocabulary; a BPE token it lacks becomes <see cref="Unknown"/>.</summary>
    public int[] Encode(string text) => [.. _bpe.Encode(text).Select(t => _fromGpt2.TryGetValue(t, out int id) ? id : Unknown)];

    public string Decode(IEnumerable<int> ids) => _bpe.Decode(ids.Where(id => id < TextVocabulary).Select(id => _toGpt2[id]));

    /// <summary>The tokens of verse <paramref name="verse"/> of passage <paramref name="passage"/>.</summary>
    public ReadOnlySpan<int> VerseTokens(int passage, int verse)
    {
        var starts = VerseStarts[passage];
        int end = verse + 1 < starts.Length ? starts[verse + 1] : Tokens[passage].Length;
        return Tokens[passage].AsSpan(starts[verse], end - starts[verse]);
    }
}
