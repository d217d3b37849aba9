namespace Mnemo.Tasks;

/// <summary>
/// State tracking (Merrill, Petty &amp; Sabharwal 2024; Grazzi et al. 2024, arXiv 2411.12537; docs/tasks.md#state-tracking):
/// inputs x_1 … x_L are uniform random elements of a group G, and the label at position t is the state
/// s_t = x_t · s_{t−1} (s_0 the identity), the product of everything read so far. Elements are numbered as tokens: for Z₂
/// the bits 0 and 1 (the state is their parity), for S_n the permutations of n items in lexicographic order (token 0
/// is the identity), with (a · b)(i) = a(b(i)): apply b, then a. Each example has its own stream seeded by (seed,
/// slice, index).
/// </summary>
public static class StateTracking
{
    public static int Order(TrackedGroup group) => group switch
    {
        TrackedGroup.Parity => 2,
        TrackedGroup.S3 => 6,
        _ => 120,
    };

    /// <summary>The multiplication table: product[a, b] = a · b.</summary>
    public static int[,] Table(TrackedGroup group)
    {
        if (group == TrackedGroup.Parity) return new[,] { { 0, 1 }, { 1, 0 } };
        var elements = Permutations(group == TrackedGroup.S3 ? 3 : 5);
        var index = elements.Select((p, i) => (Key: string.Join(",", p), i)).ToDictionary(e => e.Key, e => e.i);
        var table = new int[elements.Length, elements.Length];
        for (int a = 0; a < elements.Length; a++)
            for (int b = 0; b < elements.Length; b++)
                table[a, b] = index[string.Join(",", elements[b].Select(i => elements[a][i]))];
        return table;
    }

    /// <summary>Every permutation of 0 … n−1, lexicographically ordered (the identity first).</summary>
    static int[][] Permutations(int n)
    {
        if (n == 0) return [[]];
        return [.. Enumerable.Range(0, n).SelectMany(first => Permutations(n - 1)
            .Select(rest => new[] { first }.Concat(rest.Select(r => r >= first ? r + 1 : r)).ToArray()))];
    }

    public static TaskBatch Generate(StateTrackingConfig task, StateTrackingSlice slice, int seed, int sliceIndex)
    {
        var table = Table(task.Group);
        int order = table.GetLength(0);
        return Examples.Generate(slice.NumExamples, slice.SeqLen, slice.SeqLen - slice.ScoreFrom, seed, sliceIndex,
            (_, rng, input, label) =>
            {
                int state = 0;                                                   // the identity
                for (int t = 0; t < input.Length; t++)
                {
                    int x = rng.Next(order);
                    state = table[x, state];
                    input[t] = x;
                    if (t >= slice.ScoreFrom) label[t] = state;
                }
            });
    }

    public static TaskBatch[] GenerateAll(StateTrackingConfig task, StateTrackingSlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, seed, i)).ToArray();
}
