using Mnemo.Runtime;

namespace Mnemo.Tasks;

/// <summary>Writes example <c>index</c> of a slice into its row (labels arrive filled with Ignore).</summary>
public delegate void ExampleWriter(int index, Random rng, Span<long> input, Span<long> label);

/// <summary>What every task generator and task config share.</summary>
public static class Examples
{
    /// <summary>
    /// n examples of length l, row-major; example i is written from its own stream seeded by (seed, slice, i), so a
    /// slice is reproducible on its own and train and test streams never overlap when their seeds differ.
    /// </summary>
    public static TaskBatch Generate(int n, int l, int itemsPerExample, int seed, int sliceIndex, ExampleWriter write)
    {
        var inputs = new long[n * l];
        var labels = new long[n * l];
        Array.Fill(labels, TaskBatch.Ignore);
        for (int i = 0; i < n; i++)
            write(i, new Random(SeedMixer.Derive(seed, sliceIndex, i)), inputs.AsSpan(i * l, l), labels.AsSpan(i * l, l));
        return new TaskBatch(l, itemsPerExample, inputs, labels);
    }

    /// <summary>
    /// The rules of every task config with train and test slices: different seeds (test examples unseen), at least
    /// one slice each; then each slice's own rules, their fields prefixed "train[i]." / "test[i].".
    /// </summary>
    public static IEnumerable<(string Field, string Problem)> CheckSlices<TSlice>(
        int trainSeed, int testSeed, TSlice[] train, TSlice[] test,
        Func<TSlice, IEnumerable<(string Field, string Problem)>>? eachSlice = null)
    {
        if (trainSeed == testSeed) yield return ("test_seed", $"must differ from train_seed ({trainSeed}) so test examples are unseen");
        if (train.Length == 0) yield return ("train", "needs at least one slice");
        if (test.Length == 0) yield return ("test", "needs at least one slice");
        if (eachSlice is null) yield break;
        foreach (var (name, slices) in new[] { ("train", train), ("test", test) })
            for (int i = 0; i < slices.Length; i++)
                foreach (var (field, problem) in eachSlice(slices[i]))
                    yield return ($"{name}[{i}].{field}", problem);
    }
}
