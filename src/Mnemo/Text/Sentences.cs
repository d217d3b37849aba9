using System.Text.RegularExpressions;

namespace Mnemo.Text;

/// <summary>
/// Splits text into sentences for needle placement (S-NIAH puts the needle at a sentence boundary, EVALUATIONS.md
/// §3) and excerpt starts (SORT, §6): whitespace runs become one space, and a sentence ends at ".", "!" or "?"
/// (with any closing quotes or brackets) followed by whitespace. Lines without end punctuation (headings) join the
/// next sentence. Crude next to nltk, but deterministic and enough to keep needles between sentences.
/// </summary>
public static partial class Sentences
{
    [GeneratedRegex(@"\s+")] private static partial Regex Whitespace();
    [GeneratedRegex(@"(?<=[.!?][""'’”)\]]*)\s+")] private static partial Regex End();

    public static string[] Split(string text) =>
        End().Split(Whitespace().Replace(text, " ").Trim()).Where(s => s.Length > 0).ToArray();
}
