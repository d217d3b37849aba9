namespace Mnemo.Text;

/// <summary>
/// A text as a sequence of tokenised sentences (each encoded with a leading space, as it reads inside running
/// text). <see cref="Take"/> cuts token windows that start at a sentence and knows where the sentences inside
/// begin. Sentences are tokenised on first use, so a large corpus costs only what the examples touch.
/// </summary>
public sealed class TokenizedBook
{
    readonly string[] _sentences;
    readonly int[]?[] _tokens;

    public TokenizedBook(IReadOnlyList<string> sentences, ITokenizer tokenizer)
    {
        if (sentences.Count == 0) throw new CorpusException("the text has no sentences");
        _sentences = sentences.ToArray();
        _tokens = new int[]?[_sentences.Length];
        Tokenizer = tokenizer;
    }

    public ITokenizer Tokenizer { get; }

    public int SentenceCount => _sentences.Length;

    public string SentenceText(int index) => _sentences[index];

    public int[] SentenceTokens(int index) => _tokens[index] ??= Tokenizer.Encode(" " + _sentences[index]);

    /// <summary>
    /// <paramref name="length"/> tokens of running text from sentence <paramref name="start"/> on (wrapping round at
    /// the end of the book; the last sentence is cut), and the offsets in [0, length) where a sentence begins.
    /// </summary>
    public (long[] Tokens, int[] SentenceStarts) Take(int start, int length)
    {
        var tokens = new long[length];
        var starts = new List<int>();
        for (int p = 0, s = start; p < length; s = (s + 1) % _sentences.Length)
        {
            var sentence = SentenceTokens(s);
            if (sentence.Length == 0) continue;
            starts.Add(p);
            for (int i = 0; i < sentence.Length && p < length; i++) tokens[p++] = sentence[i];
        }
        return (tokens, starts.ToArray());
    }
}
