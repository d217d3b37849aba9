namespace Mnemo.Memory.Episodic;

/// <summary>
/// EM-LLM's event segmentation by surprise (Fountas et al. 2024, §3.2; docs/mechanisms.md#em-llm-episodic-memory): token t
/// opens a new event when its surprise s_t = −log p(x_t | x_&lt;t) exceeds T_t = μ + γ·σ, the mean and standard deviation
/// of the surprise of the previous τ tokens. An event is at least <c>minEvent</c> tokens long (a boundary closer to the
/// previous one is skipped) and at most <c>maxEvent</c> (a longer run is cut).
/// </summary>
public static class SurpriseBoundaries
{
    /// <summary>
    /// The boundaries among positions [from, surprise.Count): each is the first position of an event. Position
    /// <paramref name="lastBoundary"/> is where the event in progress began (0 at the start of a stream).
    /// </summary>
    /// <param name="surprise">s_t for every position so far (s_0 is not defined and never opens an event)</param>
    public static List<int> Find(IReadOnlyList<double> surprise, int from, int lastBoundary, double gamma, int window,
        int minEvent, int maxEvent)
    {
        var boundaries = new List<int>();
        for (int t = Math.Max(from, 1); t < surprise.Count; t++)
        {
            int length = t - lastBoundary;
            bool open = length >= maxEvent || (length >= minEvent && surprise[t] > Threshold(surprise, t, gamma, window));
            if (!open) continue;
            boundaries.Add(t);
            lastBoundary = t;
        }
        return boundaries;
    }

    /// <summary>T_t = μ + γ·σ over s_{max(1, t−τ)} … s_{t−1} (population σ); +∞ before any surprise is known.</summary>
    public static double Threshold(IReadOnlyList<double> surprise, int t, double gamma, int window)
    {
        int start = Math.Max(1, t - window);
        int n = t - start;
        if (n <= 0) return double.PositiveInfinity;
        double mean = 0;
        for (int i = start; i < t; i++) mean += surprise[i];
        mean /= n;
        double variance = 0;
        for (int i = start; i < t; i++) variance += (surprise[i] - mean) * (surprise[i] - mean);
        return mean + gamma * Math.Sqrt(variance / n);
    }
}
