using Mnemo.Runtime;

namespace Mnemo.Tasks;

/// <summary>
/// Set disjointness, JRT's intersect_token mode (docs/tasks.md#set-disjointness). Per example:
/// <list type="number">
/// <item>[4, V) is permuted and split into two halves; A (|A| = short_length) is drawn from the first half and B
/// (|B| = long_length) from the second, each without replacement, so A and B start disjoint.</item>
/// <item>One random element of A overwrites one random position of B: exactly one token is shared.</item>
/// <item>The sequence is ([1] A [2] B) × num_passes, then [3] and the shared token. Inputs are all but that final
/// token (length passes·(|A| + |B| + 2) + 1, i.e. |A| + |B| + 3 for one pass); the only label, at the last input
/// position (the answer separator), is the shared token.</item>
/// </list>
/// Repeating the context (num_passes = 2, JRT-Prompt) lets a causal model see B before re-reading A, which removes
/// the advantage of putting the smaller set first. The batch's NumKvPairs is |A|, so a result slice (L, |A|) tells
/// the two orders of one pair of sizes apart. Each example has its own stream seeded by (seed, slice, index).
/// </summary>
public static class SetDisjointness
{
    public const int Mask = 0, Bos = 1, SetSeparator = 2, AnswerSeparator = 3, FirstElement = 4;

    /// <summary>Input length: the context (BOS, A, separator, B) per pass, and the answer separator.</summary>
    public static int SeqLen(SetDisjointnessConfig task, SetDisjointnessSlice slice) =>
        task.NumPasses * (slice.ShortLength + slice.LongLength + 2) + 1;

    public static TaskBatch Generate(SetDisjointnessConfig task, SetDisjointnessSlice slice, int seed, int sliceIndex)
    {
        return Examples.Generate(slice.NumExamples, SeqLen(task, slice), slice.ShortLength, seed, sliceIndex,
            (_, rng, input, label) => WriteExample(task, slice, rng, input, label));
    }

    public static TaskBatch[] GenerateAll(SetDisjointnessConfig task, SetDisjointnessSlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, seed, i)).ToArray();

    static void WriteExample(SetDisjointnessConfig task, SetDisjointnessSlice slice, Random rng, Span<long> input, Span<long> label)
    {
        int a = slice.ShortLength, b = slice.LongLength;
        // A random permutation of [4, V) split in halves; drawing a prefix of each half is drawing without replacement.
        int[] permutation = Mqar.SampleDistinct(rng, FirstElement, task.VocabSize, task.VocabSize - FirstElement);
        int[] setA = permutation[..a];
        int[] setB = permutation[task.HalfA..(task.HalfA + b)];
        int shared = setA[rng.Next(a)];
        setB[rng.Next(b)] = shared;

        int p = 0;
        for (int pass = 0; pass < task.NumPasses; pass++)
        {
            input[p++] = Bos;
            foreach (int t in setA) input[p++] = t;
            input[p++] = SetSeparator;
            foreach (int t in setB) input[p++] = t;
        }
        input[p] = AnswerSeparator;
        label.Fill(TaskBatch.Ignore);
        label[p] = shared;
    }
}
