using System.Collections.Concurrent;
using Mnemo.IO;

namespace Mnemo.Text;

/// <summary>
/// Where a text task's tokens come from: a tokenizer and a corpus (by name, path or "generated"). Shared by the
/// S-NIAH analogues' natural-text haystacks and SORT's books.
/// </summary>
public sealed record TextConfig : IValidatedConfig
{
    [Help("tokenizer: bytes (UTF-8 bytes, 256 ids) or gpt2 (GPT-2 BPE, 50257 ids); task tokens come after its ids")]
    public TokenizerKind Tokenizer { get; init; } = TokenizerKind.Bytes;
    [Help("text: generated (built-in English-like sentences), a corpus exported by scripts/setup-corpora.sh (kjv, austen, austen-emma, " +
        "…) or a UTF-8 file path")]
    public string Corpus { get; init; } = Corpora.Generated;
    [Help("fail when a named corpus is not set up, instead of falling back to generated text")] public bool Strict { get; init; }
    [Help("seed of the generated text (used for generated and as the fallback)"), Range(0, int.MaxValue)]
    public int GeneratedSeed { get; init; }
    [Help("sentences of generated text"), Range(1, 10_000_000)] public int GeneratedSentences { get; init; } = 20_000;

    public IEnumerable<(string, string)> Validate()
    {
        if (string.IsNullOrWhiteSpace(Corpus)) yield return ("corpus", "must name a corpus, a file or \"generated\"");
        else if (Corpora.Problem(Corpus, Strict) is { } problem) yield return ("corpus", problem);
    }

    static readonly ConcurrentDictionary<TextConfig, Lazy<TokenizedBook>> Books = new();

    /// <summary>The corpus as tokenised sentences, loaded once per distinct setting. A fallback to generated text is
    /// reported on stderr, once.</summary>
    public TokenizedBook Book() => Books.GetOrAdd(this, c => new Lazy<TokenizedBook>(() =>
        new TokenizedBook(Sentences.Split(c.Load().Text), Tokenizers.Get(c.Tokenizer)))).Value;

    /// <summary>Why the text is not the corpus this names (a named corpus that is not set up, so generated text stands in),
    /// or null when it is; decided without reading the text.</summary>
    public string? FallbackNote() =>
        Corpus != Corpora.Generated && !Corpora.IsPath(Corpus) && Corpora.FilesOf(Corpus).Length == 0
            ? $"corpus \"{Corpus}\" is not set up (scripts/setup-corpora.sh): generated text was used instead"
            : null;

    /// <summary>The corpus this names, read now; a fallback to generated text is reported on stderr.</summary>
    public Corpus Load()
    {
        var corpus = Corpora.Load(Corpus, Strict, GeneratedSeed, GeneratedSentences);
        if (corpus.Note is { } note) Console.Error.WriteLine($"note: {note}");
        return corpus;
    }
}
