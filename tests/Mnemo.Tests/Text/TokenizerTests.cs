using Mnemo.Text;

namespace Mnemo.Tests.Text;

public class TokenizerTests
{
    [Theory]
    [InlineData("Hello world")]
    [InlineData("")]
    [InlineData("Ça va? Grüße, 東京 🙂 — “quoted”\n\ttab")]
    public void Bytes_round_trip_any_text_as_its_utf8_bytes(string text)
    {
        var t = ByteTokenizer.Instance;
        var ids = t.Encode(text);
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b), ids);
        Assert.All(ids, id => Assert.InRange(id, 0, t.VocabSize - 1));
        Assert.Equal(text, t.Decode(ids));
    }

    [Fact]
    public void Byte_ids_outside_a_byte_are_rejected()
    {
        Assert.Equal(256, ByteTokenizer.Instance.VocabSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => ByteTokenizer.Instance.Decode([72, 256]));
    }

    [Fact]
    public void Gpt2_gives_the_known_ids_and_round_trips()
    {
        var t = Tokenizers.Get(TokenizerKind.Gpt2);
        Assert.Equal(50257, t.VocabSize);
        Assert.Equal([15496, 995], t.Encode("Hello world"));
        const string text = "The passkey is 12345. Ça va? 東京";
        var ids = t.Encode(text);
        Assert.All(ids, id => Assert.InRange(id, 0, t.VocabSize - 1));
        Assert.Equal(text, t.Decode(ids));
    }
}
