using static TorchSharp.torch;

namespace Mnemo.Memory.Episodic;

/// <summary>
/// EM-LLM's boundary refinement (Fountas et al. 2024, §3.3; docs/mechanisms.md#em-llm-episodic-memory). The tokens form a
/// graph whose edge weights are key similarities, A_ij = k_i · k_j. Each boundary e, taken in order after the previous
/// (already refined) boundary p, moves to the position of [p + minEvent, e] whose two-event split of the window
/// [p − h, e + h), h = ⌊(e − p)/2⌋, has the highest modularity (or the lowest conductance).
/// </summary>
public static class BoundaryRefinement
{
    /// <summary>Refined copies of <paramref name="boundaries"/> (increasing, each &gt; <paramref name="previous"/>).</summary>
    /// <param name="adjacency">A [n, n] over positions offset … offset + n − 1 (symmetric)</param>
    /// <param name="offset">the position of A's first row</param>
    /// <param name="previous">the boundary before the first one refined (0 at the start of a stream)</param>
    public static List<int> Refine(Tensor adjacency, int offset, IReadOnlyList<int> boundaries, int previous, int minEvent,
        RefinementKind metric)
    {
        long n = adjacency.shape[0];
        using var flat = adjacency.to(ScalarType.Float64).cpu().contiguous();
        var a = flat.data<double>().ToArray();                                          // row-major [n, n]
        var refined = new List<int>();
        int p = previous;
        foreach (int e in boundaries)
        {
            int h = (e - p) / 2;
            int start = Math.Max(offset, p - h), end = (int)Math.Min(offset + n, e + h);
            var scores = Splits(a, (int)n, start - offset, end - start, metric);          // per split point t − start
            int best = e;
            double bestScore = double.NaN;
            for (int t = p + minEvent; t <= e; t++)
            {
                double score = scores[t - start];
                if (double.IsNaN(bestScore) || score > bestScore) (best, bestScore) = (t, score);
            }
            refined.Add(best);
            p = best;
        }
        return refined;
    }

    /// <summary>The first position a refinement of boundaries after <paramref name="previous"/> reads.</summary>
    public static int WindowStart(int previous, int firstBoundary) => Math.Max(0, previous - (firstBoundary - previous) / 2);

    /// <summary>Modularity of the split {[0, t), [t, n)} of a graph A [n, n] (Newman 2006):
    /// Q = (1/2m) Σ_ij (A_ij − d_i d_j / 2m) δ(c_i, c_j), d_i = Σ_j A_ij, 2m = Σ_ij A_ij.</summary>
    public static double Modularity(Tensor a, long t) =>
        Splits(Flat(a), (int)a.shape[0], 0, (int)a.shape[0], RefinementKind.Modularity)[t];

    /// <summary>Conductance of the split {[0, t), [t, n)}: cut(S, S̄) / min(vol S, vol S̄), vol = the sum of degrees.</summary>
    public static double Conductance(Tensor a, long t) =>
        -Splits(Flat(a), (int)a.shape[0], 0, (int)a.shape[0], RefinementKind.Conductance)[t];

    static double[] Flat(Tensor a)
    {
        using var flat = a.to(ScalarType.Float64).cpu().contiguous();
        return flat.data<double>().ToArray();
    }

    /// <summary>
    /// For every split point t = 0 … m of the window [w, w + m) of A (row-major, n per row): its modularity, or minus its
    /// conductance (higher is better either way). From prefix sums: D_t = Σ_{i&lt;t} d_i, L_t = Σ_{i,j&lt;t} A_ij, the right part's
    /// inside weight is 2m − 2D_t + L_t and the cut D_t − L_t.
    /// </summary>
    static double[] Splits(double[] a, int n, int w, int m, RefinementKind metric)
    {
        var degree = new double[m];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) degree[i] += a[(w + i) * n + w + j];
        var scores = new double[m + 1];
        double total = degree.Sum(), d = 0, inside = 0;                                 // D_t, L_t
        for (int t = 0; t <= m; t++)
        {
            if (t > 0)
            {
                int i = t - 1;                                                            // L_t = L_{t−1} + 2 Σ_{j<i} A_ij + A_ii
                double row = 0;
                for (int j = 0; j < i; j++) row += a[(w + i) * n + w + j];
                inside += 2 * row + a[(w + i) * n + w + i];
                d += degree[i];
            }
            double rightInside = total - 2 * d + inside, cut = d - inside;
            scores[t] = metric == RefinementKind.Modularity
                ? total == 0 ? 0 : (inside - d * d / total + rightInside - (total - d) * (total - d) / total) / total
                : Math.Min(d, total - d) is var volume && volume > 0 ? -cut / volume : double.NegativeInfinity;
        }
        return scores;
    }
}
