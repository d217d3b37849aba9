namespace Mnemo.Memory.Episodic;

/// <summary>
/// VideoLLaMB's SceneTilling (Wang et al. 2024, §3.1; docs/mechanisms.md#scenetilling-and-the-memory-bridge): TextTiling
/// (Hearst 1997) on a stream of vectors. The similarity of neighbours s_i = cos(c_i, c_{i+1}) dips at a scene change; its
/// depth there, d_i = hl_i + hr_i − 2 s_i, adds how far it climbs back on each side (hl_i, hr_i: the highest similarity
/// reached walking left, or right, from i while the similarity does not fall). Scene changes are the gaps whose depth
/// exceeds mean(d) + α·std(d), the deepest first, at most <c>maxScenes</c> − 1 of them.
/// </summary>
public static class SceneTilling
{
    /// <summary>s_i = cos(c_i, c_{i+1}) for the n − 1 gaps of frames [n][D].</summary>
    public static double[] Similarities(IReadOnlyList<float[]> frames)
    {
        var s = new double[Math.Max(0, frames.Count - 1)];
        for (int i = 0; i < s.Length; i++) s[i] = Cosine(frames[i], frames[i + 1]);
        return s;
    }

    /// <summary>The depth score of every gap: d_i = hl_i + hr_i − 2 s_i.</summary>
    public static double[] Depths(IReadOnlyList<double> s)
    {
        var d = new double[s.Count];
        for (int i = 0; i < s.Count; i++)
        {
            double left = s[i], right = s[i];
            for (int j = i - 1; j >= 0 && s[j] >= left; j--) left = s[j];
            for (int j = i + 1; j < s.Count && s[j] >= right; j++) right = s[j];
            d[i] = left + right - 2 * s[i];
        }
        return d;
    }

    /// <summary>
    /// The first frame of every scene after the first (a gap i is a change between frames i and i + 1, so frame i + 1
    /// starts a scene), increasing. A stream of one frame or with no gap above the threshold is one scene.
    /// </summary>
    /// <param name="alpha">α: how many standard deviations above the mean depth a change must be (VideoLLaMB: 0.5)</param>
    /// <param name="maxScenes">at most this many scenes: the deepest changes are kept (VideoLLaMB: 15)</param>
    public static int[] Boundaries(IReadOnlyList<float[]> frames, double alpha = 0.5, int maxScenes = 15)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxScenes, 1);
        var d = Depths(Similarities(frames));
        if (d.Length == 0) return [];
        double mean = d.Average(), std = Math.Sqrt(d.Average(x => (x - mean) * (x - mean)));
        return Enumerable.Range(0, d.Length).Where(i => d[i] > mean + alpha * std)
            .OrderByDescending(i => d[i]).ThenBy(i => i).Take(maxScenes - 1).Select(i => i + 1).Order().ToArray();
    }

    static double Cosine(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"frames of {a.Length} and {b.Length} values cannot be compared");
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) (dot, na, nb) = (dot + a[i] * b[i], na + a[i] * a[i], nb + b[i] * b[i]);
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }
}
