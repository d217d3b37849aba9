using Mnemo.Runtime;

namespace Mnemo.Tasks;

/// <summary>
/// N-parity and N-DMS of Khajehabdollahi, Zeraati et al. (docs/tasks.md#n-parity-and-n-dms) as a token task. Per example:
/// <list type="number">
/// <item>The stream length M is uniform over the integers in [N + 2, 4N + 2).</item>
/// <item>Parity: bits are Bernoulli(p), p ~ U(0, 1) drawn per sequence (deliberately unbalanced); the target is
/// (x[M−N] + … + x[M−1]) mod 2. DMS: bits are Bernoulli(0.5); the target is 1 iff x[M−N] == x[M−1].</item>
/// <item>The stream is left-padded with PAD (token 2) to the slice length L; the only label, the target as token
/// 0 or 1, is at the final position L − 1.</item>
/// </list>
/// Why pad: the reference feeds variable-length streams and classifies at each stream's last step, but a TaskBatch
/// slice is a dense [N, L] block. Left padding keeps every stream's last bit (and so its label) at L − 1, and a
/// causal model reads all PAD tokens before the first bit, so the pad only delays the start and never sits between
/// bits the answer depends on. Each example has its own stream seeded by (seed, slice, index).
/// </summary>
public static class ParityDms
{
    public const int Pad = 2;

    public static TaskBatch Generate(ParityDmsConfig task, ParityDmsSlice slice, int seed, int sliceIndex)
    {
        return Examples.Generate(slice.NumExamples, slice.SeqLen, 1, seed, sliceIndex,
            (_, rng, input, label) => WriteExample(task, rng, input, label));
    }

    public static TaskBatch[] GenerateAll(ParityDmsConfig task, ParityDmsSlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, seed, i)).ToArray();

    /// <summary>The target of a bit stream (without padding): parity of its last N bits, or whether x[−N] == x[−1].</summary>
    public static int Target(BitTaskKind kind, int n, ReadOnlySpan<long> bits)
    {
        int m = bits.Length;
        if (kind == BitTaskKind.Dms) return bits[m - n] == bits[m - 1] ? 1 : 0;
        long sum = 0;
        foreach (long b in bits[(m - n)..]) sum += b;
        return (int)(sum % 2);
    }

    static void WriteExample(ParityDmsConfig task, Random rng, Span<long> input, Span<long> label)
    {
        int n = task.N, l = input.Length;
        int m = rng.Next(n + 2, 4 * n + 2);
        double p = task.Variant == BitTaskKind.Parity ? rng.NextDouble() : 0.5;
        input[..(l - m)].Fill(Pad);
        var bits = input[(l - m)..];
        for (int i = 0; i < m; i++) bits[i] = rng.NextDouble() < p ? 1 : 0;
        label.Fill(TaskBatch.Ignore);
        label[l - 1] = Target(task.Variant, n, bits);
    }
}
