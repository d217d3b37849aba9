using System.Text;

namespace Mnemo.Text;

/// <summary>
/// Text ↔ token ids in [0, <see cref="VocabSize"/>). Text tasks put their own marker, key and value tokens at ids
/// ≥ VocabSize, so they can never occur in tokenised text (docs/tasks.md#text-sources: the needle must be present once).
/// </summary>
public interface ITokenizer
{
    /// <summary>Text tokens are in [0, VocabSize); ids from VocabSize up are free for task tokens.</summary>
    int VocabSize { get; }

    int[] Encode(string text);

    string Decode(IEnumerable<int> ids);

    /// <summary>The UTF-8 bytes of the text the tokens decode to (bits per byte divide by it).</summary>
    int ByteLength(IReadOnlyList<int> ids) => Encoding.UTF8.GetByteCount(Decode(ids));
}

/// <summary>Which tokenizer a text task uses.</summary>
public enum TokenizerKind
{
    /// <summary>UTF-8 bytes, 256 ids: no download, every text representable (<see cref="ByteTokenizer"/>).</summary>
    Bytes,
    /// <summary>GPT-2's BPE, 50 257 ids (<see cref="Gpt2Tokenizer"/>).</summary>
    Gpt2,
}

public static class Tokenizers
{
    /// <summary>The tokenizer of a kind; GPT-2's is built once (its vocabulary takes a moment to load).</summary>
    public static ITokenizer Get(TokenizerKind kind) => kind switch
    {
        TokenizerKind.Bytes => ByteTokenizer.Instance,
        TokenizerKind.Gpt2 => Gpt2Tokenizer.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
