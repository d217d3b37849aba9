namespace Mnemo.Text;

/// <summary>
/// ROUGE-L (Lin, 2004): the F1 of the longest common subsequence of words between a candidate text and its reference,
/// P = LCS / |candidate|, R = LCS / |reference|. Words as the rouge-score package makes them without a stemmer:
/// lower-cased, every run of characters other than a–z and 0–9 a separator.
/// </summary>
public static class Rouge
{
    public static double L(string candidate, string reference)
    {
        string[] c = Words(candidate), r = Words(reference);
        if (c.Length == 0 || r.Length == 0) return 0;
        int lcs = LongestCommonSubsequence(c, r);
        if (lcs == 0) return 0;
        double precision = (double)lcs / c.Length, recall = (double)lcs / r.Length;
        return 2 * precision * recall / (precision + recall);
    }

    public static string[] Words(string text)
    {
        var chars = text.ToLowerInvariant().Select(ch => ch is >= 'a' and <= 'z' or >= '0' and <= '9' ? ch : ' ').ToArray();
        return new string(chars).Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Length of the longest common subsequence, by the textbook dynamic programme over one row.</summary>
    public static int LongestCommonSubsequence(string[] a, string[] b)
    {
        var row = new int[b.Length + 1];
        foreach (var x in a)
        {
            int diagonal = 0;                                                // row[j − 1] of the previous row
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = x == b[j - 1] ? diagonal + 1 : Math.Max(row[j], row[j - 1]);
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
