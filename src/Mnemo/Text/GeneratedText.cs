using System.Text;

namespace Mnemo.Text;

/// <summary>
/// English-like text from a small word list and a tiny grammar, so text tasks run with no corpus at hand:
/// <code>
///   S  → NP VP "."          NP → Det [Adj] Noun          VP → Verb NP [Prep NP] | Verb Adv
/// </code>
/// The same seed always gives the same text (each sentence from its own stream, seeded by (seed, index)).
/// </summary>
public static class GeneratedText
{
    static readonly string[] Determiners = ["the", "a", "this", "that", "every", "one", "some", "no"];
    static readonly string[] Adjectives =
        ["old", "young", "small", "large", "quiet", "bright", "dark", "green", "cold", "warm", "gentle", "proud",
         "tired", "clever", "silent", "distant", "happy", "broken", "golden", "hidden"];
    static readonly string[] Nouns =
        ["king", "river", "garden", "house", "child", "letter", "horse", "city", "friend", "window", "mountain",
         "teacher", "ship", "forest", "road", "sister", "bird", "lamp", "field", "stranger", "door", "village",
         "stone", "soldier", "book", "bridge", "farmer", "song", "tree", "market"];
    static readonly string[] Verbs =
        ["sees", "finds", "follows", "remembers", "carries", "watches", "leaves", "meets", "builds", "keeps",
         "crosses", "hears", "loves", "opens", "greets", "fears", "paints", "visits"];
    static readonly string[] Adverbs = ["slowly", "quickly", "softly", "again", "alone", "early", "late", "gladly"];
    static readonly string[] Prepositions = ["near", "behind", "under", "beside", "beyond", "across", "above", "inside"];

    /// <summary>Sentence <paramref name="index"/> of the text seeded by <paramref name="seed"/>.</summary>
    public static string Sentence(int seed, int index)
    {
        var rng = new Random(Runtime.SeedMixer.Derive(seed, index));
        var words = new List<string>();
        NounPhrase(rng, words);
        words.Add(Pick(rng, Verbs));
        if (rng.Next(4) == 0) words.Add(Pick(rng, Adverbs));
        else
        {
            NounPhrase(rng, words);
            if (rng.Next(3) == 0) { words.Add(Pick(rng, Prepositions)); NounPhrase(rng, words); }
        }
        string s = string.Join(' ', words) + ".";
        return char.ToUpperInvariant(s[0]) + s[1..];
    }

    /// <summary>The first <paramref name="sentences"/> sentences, space-separated.</summary>
    public static string Generate(int seed, int sentences)
    {
        var text = new StringBuilder();
        for (int i = 0; i < sentences; i++) text.Append(i == 0 ? "" : " ").Append(Sentence(seed, i));
        return text.ToString();
    }

    static void NounPhrase(Random rng, List<string> words)
    {
        words.Add(Pick(rng, Determiners));
        if (rng.Next(2) == 0) words.Add(Pick(rng, Adjectives));
        words.Add(Pick(rng, Nouns));
    }

    static string Pick(Random rng, string[] list) => list[rng.Next(list.Length)];
}
