using Mnemo.Runtime;

namespace Mnemo.Tasks;

/// <summary>
/// The MQAR generator with Zoology's semantics (docs/tasks.md#mqar). Per example:
/// <list type="number">
/// <item>K distinct keys from [1, V/2) and K distinct values from [V/2, V); the context block k1 v1 k2 v2 …
/// (tiled num_passes times).</item>
/// <item>The query region has space = (L − 2K·passes)/2 two-token slots; K distinct slots ("gaps") are drawn
/// without replacement with p(g) ∝ a·g^(a−1), g = 1…space, so short key→query distances dominate.</item>
/// <item>Key i is written at position 2K·passes + 2·gap_i; its value is the label at that same position (the next
/// token). Every other label is −100 (ignored).</item>
/// <item>Remaining zeros become uniform random tokens in [0, V) when random_non_queries (as Zoology does).</item>
/// </list>
/// Every example is drawn from its own stream seeded by (seed, slice, index), so a slice is reproducible on
/// its own and train/test streams never overlap when their seeds differ.
/// </summary>
public static class Mqar
{
    public const long Ignore = TaskBatch.Ignore;

    public static TaskBatch Generate(MqarConfig task, MqarSlice slice, int seed, int sliceIndex)
    {
        return Examples.Generate(slice.NumExamples, slice.SeqLen, slice.NumKvPairs, seed, sliceIndex,
            (_, rng, input, label) => WriteExample(task, slice, rng, input, label));
    }

    public static TaskBatch[] GenerateAll(MqarConfig task, MqarSlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, seed, i)).ToArray();

    static void WriteExample(MqarConfig task, MqarSlice slice, Random rng, Span<long> input, Span<long> label)
    {
        int v = task.VocabSize, k = slice.NumKvPairs, l = slice.SeqLen, passes = task.NumPasses;
        int keyVocab = v / 2;
        int[] keys = SampleDistinct(rng, 1, keyVocab, k);     // from [1, V/2)
        int[] values = SampleDistinct(rng, keyVocab, v, k);   // from [V/2, V)
        int context = 2 * k * passes;

        input.Clear();
        label.Fill(Ignore);
        for (int p = 0; p < passes; p++)
            for (int i = 0; i < k; i++)
            {
                input[p * 2 * k + 2 * i] = keys[i];
                input[p * 2 * k + 2 * i + 1] = values[i];
            }

        int space = (l - context) / 2;
        int[] gaps = SamplePowerLawGaps(rng, space, k, task.PowerA);
        for (int i = 0; i < k; i++)
        {
            int at = context + 2 * gaps[i];
            input[at] = keys[i];
            label[at] = values[i];
        }

        if (task.RandomNonQueries)
            for (int p = 0; p < l; p++)
                if (input[p] == 0) input[p] = rng.Next(v);
    }

    /// <summary>count distinct integers from [lo, hi), uniformly, in random order (partial Fisher–Yates).</summary>
    public static int[] SampleDistinct(Random rng, int lo, int hi, int count)
    {
        int range = hi - lo;
        if (count > range) throw new ArgumentException($"cannot draw {count} distinct values from [{lo}, {hi})");
        var pool = new int[range];
        for (int i = 0; i < range; i++) pool[i] = lo + i;
        for (int i = 0; i < count; i++)
        {
            int j = rng.Next(i, range);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        return pool[..count];
    }

    /// <summary>
    /// count distinct slot indices in [0, space) drawn one after another without replacement, slot s having
    /// weight a·(s+1)^(a−1) renormalised over the slots not yet taken (numpy's choice(replace=False, p=…)).
    /// </summary>
    public static int[] SamplePowerLawGaps(Random rng, int space, int count, double a)
    {
        if (count > space) throw new ArgumentException($"cannot place {count} queries in {space} slots");
        var weight = new double[space];
        double total = 0;
        for (int s = 0; s < space; s++) total += weight[s] = a * Math.Pow(s + 1, a - 1);
        var gaps = new int[count];
        for (int i = 0; i < count; i++)
        {
            double u = rng.NextDouble() * total, acc = 0;
            int pick = -1;
            for (int s = 0; s < space; s++)
            {
                if (weight[s] == 0) continue;
                pick = s;
                acc += weight[s];
                if (u < acc) break;
            }
            gaps[i] = pick;
            total -= weight[pick];
            weight[pick] = 0;
        }
        return gaps;
    }
}
