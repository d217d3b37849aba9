using Mnemo.IO;
using Mnemo.Text;
using Mnemo.Training;

namespace Mnemo.Tests.Text;

public class CorporaTests
{
    [Fact]
    public void Generated_text_is_deterministic_per_seed_and_reads_like_sentences()
    {
        string a = GeneratedText.Generate(7, 200), b = GeneratedText.Generate(7, 200);
        Assert.Equal(a, b);
        Assert.NotEqual(a, GeneratedText.Generate(8, 200));
        Assert.StartsWith(a, GeneratedText.Generate(7, 300));           // a longer text extends the shorter one
        var sentences = Sentences.Split(a);
        Assert.Equal(200, sentences.Length);
        Assert.All(sentences, s =>
        {
            Assert.True(char.IsUpper(s[0]), s);
            Assert.EndsWith(".", s);
            Assert.InRange(s.Split(' ').Length, 3, 12);
        });
        Assert.True(sentences.Distinct().Count() > 190, "sentences should rarely repeat");
    }

    [Fact]
    public void Sentences_split_after_end_punctuation_and_join_headings()
    {
        Assert.Equal(["CHAPTER I Emma Woodhouse was rich.", "Was she \"happy?\"", "Yes!", "No"],
            Sentences.Split("CHAPTER I\n\nEmma Woodhouse   was rich.\nWas she \"happy?\" Yes! No"));
    }

    [Fact]
    public void A_missing_file_or_non_utf8_bytes_are_errors_naming_the_file()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"mnemo-no-such-{Guid.NewGuid():N}.txt");
        var e = Assert.Throws<CorpusException>(() => Corpora.Load(missing));
        Assert.Contains(missing, e.Message);

        var latin1 = Path.Combine(Path.GetTempPath(), $"mnemo-latin1-{Guid.NewGuid():N}.txt");
        File.WriteAllBytes(latin1, [(byte)'c', (byte)'a', 0xE7, (byte)'a']);          // "caça" in Latin-1
        try
        {
            e = Assert.Throws<CorpusException>(() => Corpora.Load(latin1));
            Assert.Contains(latin1, e.Message);
            Assert.Contains("not UTF-8", e.Message);
        }
        finally { File.Delete(latin1); }
    }

    [Fact]
    public void A_utf8_file_loads_by_path()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mnemo-text-{Guid.NewGuid():N}.txt");
        File.WriteAllText(path, "\uFEFFGrüße aus Köln. Zweiter Satz.", new System.Text.UTF8Encoding(true));
        try
        {
            var c = Corpora.Load(path);
            Assert.Equal("Grüße aus Köln. Zweiter Satz.", c.Text);
            Assert.Null(c.Note);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_corpus_not_set_up_falls_back_to_generated_text_with_a_note_unless_strict()
    {
        var c = Corpora.Load("no-such-corpus", generatedSeed: 3, generatedSentences: 10);
        Assert.Equal(GeneratedText.Generate(3, 10), c.Text);
        Assert.Contains("no-such-corpus", c.Note);
        var e = Assert.Throws<CorpusException>(() => Corpora.Load("no-such-corpus", strict: true));
        Assert.Contains("setup-corpora.sh", e.Message);
    }

    [Theory]
    [InlineData("kjv", "In the beginning God created the heaven and the earth.")]
    [InlineData("austen", "Emma Woodhouse, handsome, clever, and rich")]
    public void Debian_corpora_load_by_name_once_set_up(string name, string contains)
    {
        if (Corpora.FilesOf(name).Length == 0) return;       // scripts/setup-corpora.sh has not run on this machine
        var c = Corpora.Load(name, strict: true);
        Assert.Null(c.Note);
        Assert.Contains(contains, c.Text.ReplaceLineEndings(" "));

        // A text haystack from it, by name, strict.
        var niah = new Mnemo.Tasks.NiahConfig { Variant = 2, Text = new TextConfig { Corpus = name, Strict = true } };
        var batch = Mnemo.Tasks.Niah.Generate(niah, new Mnemo.Tasks.NiahSlice { SeqLen = 300, NumExamples = 4 }, 0, 1, 0);
        var haystack = ByteTokenizer.Instance.Decode(batch.Inputs.Take(100).Where(id => id < 256).Select(id => (int)id));
        Assert.True(c.Text.ReplaceLineEndings(" ").Contains(haystack.Trim()[..20]), haystack);
    }

    [Theory]
    [InlineData(
        """{ "task": { "kind": "niah", "variant": 2, "text": { "corpus": "no-such-corpus", "strict": true } } }""",
        "task.text.corpus")]
    [InlineData("""{ "task": { "kind": "sort", "text": { "corpus": "/no/such/book.txt" } } }""", "task.text.corpus")]
    [InlineData("""{ "task": { "kind": "sort", "text": { "tokenizer": "wordpiece" } } }""", "task.text.tokenizer")]
    public void Bad_text_settings_are_config_errors_naming_the_field(string json, string field)
    {
        var e = Assert.Throws<ConfigException>(() => RunConfig.Parse(json, "t.json"));
        Assert.Contains($"\"{field}\"", e.Message);
    }
}
