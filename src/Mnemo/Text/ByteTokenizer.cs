using System.Text;

namespace Mnemo.Text;

/// <summary>
/// The default tokenizer: one token per UTF-8 byte, ids [0, 256). It reserves no special ids itself: a task that
/// needs markers numbers them from 256 up (see the task's vocabulary layout), so markers and text never collide.
/// Decoding replaces an invalid byte sequence (e.g. a multi-byte character cut in half) with U+FFFD.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public static readonly ByteTokenizer Instance = new();

    public int VocabSize => 256;

    public int ByteLength(IReadOnlyList<int> ids) => ids.Count;

    public int[] Encode(string text) => Array.ConvertAll(Encoding.UTF8.GetBytes(text), b => (int)b);

    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString(ids.Select(id =>
        id is >= 0 and < 256 ? (byte)id : throw new ArgumentOutOfRangeException(nameof(ids), $"{id} is not a byte id")).ToArray());
}
