using System.Text;

namespace Mnemo.Text;

/// <summary>
/// Splits text into sentences for needle placement (S-NIAH puts the needle at a sentence boundary, docs/tasks.md#s-niah)
/// and excerpt starts (SORT, docs/tasks.md#sort): whitespace runs become one space, and a sentence ends at ".", "!" or "?"
/// (with any closing quotes or brackets) followed by whitespace. Lines without end punctuation (headings) join the
/// next sentence. Crude next to nltk, but deterministic and enough to keep needles between sentences. One linear
/// pass, so a whole Bible splits in well under a second.
/// </summary>
public static class Sentences
{
    const string Closers = "\"'’”)]";

    public static string[] Split(string text)
    {
        var sentences = new List<string>();
        var current = new StringBuilder();
        bool ended = false;          // the text so far ends a sentence: end punctuation, then only closers
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsWhiteSpace(c))
            {
                while (i + 1 < text.Length && char.IsWhiteSpace(text[i + 1])) i++;
                if (ended) Flush();
                else if (current.Length > 0) current.Append(' ');
                continue;
            }
            current.Append(c);
            ended = c is '.' or '!' or '?' || (ended && Closers.Contains(c));
        }
        Flush();
        return sentences.ToArray();

        void Flush()
        {
            var s = current.ToString().TrimEnd();
            if (s.Length > 0) sentences.Add(s);
            current.Clear();
            ended = false;
        }
    }
}
