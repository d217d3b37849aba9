using Mnemo.Runtime;

namespace Mnemo.Tasks;

/// <summary>
/// The induction-heads task of Mamba §4.1.2 (docs/tasks.md#induction-heads). Per example of length L:
/// <list type="number">
/// <item>Every position holds a uniform content token from [1, V).</item>
/// <item>The special token s = 0 is written once at a uniform position p ∈ [0, L − 3], so its successor t = x[p + 1]
/// lies inside the sequence and before the end.</item>
/// <item>The last position holds s again; its only label is t (the bigram "s t" seen earlier, completed).</item>
/// </list>
/// s therefore occurs exactly twice and the answer is unambiguous. The public Mamba repo has no generator; this
/// follows the paper's description. Each example has its own stream seeded by (seed, slice, index).
/// </summary>
public static class InductionHeads
{
    public const int Special = 0;

    public static TaskBatch Generate(InductionHeadsConfig task, InductionHeadsSlice slice, int seed, int sliceIndex)
    {
        return Examples.Generate(slice.NumExamples, slice.SeqLen, 1, seed, sliceIndex,
            (_, rng, input, label) => WriteExample(task.VocabSize, rng, input, label));
    }

    public static TaskBatch[] GenerateAll(InductionHeadsConfig task, InductionHeadsSlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, seed, i)).ToArray();

    static void WriteExample(int vocab, Random rng, Span<long> input, Span<long> label)
    {
        int l = input.Length;
        for (int i = 0; i < l; i++) input[i] = rng.Next(Special + 1, vocab);
        int at = rng.Next(l - 2);
        input[at] = Special;
        input[l - 1] = Special;
        label.Fill(TaskBatch.Ignore);
        label[l - 1] = input[at + 1];
    }
}
