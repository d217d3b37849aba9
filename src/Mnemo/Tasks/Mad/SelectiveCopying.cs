namespace Mnemo.Tasks.Mad;

/// <summary>Where the blanks go among the tokens to copy.</summary>
public enum BlankPlacement
{
    /// <summary>MAD: each blank is inserted before a uniformly chosen data token, so nothing follows the last one.</summary>
    BeforeRandomToken,
    /// <summary>Mamba's wording: the data tokens sit at uniformly random distinct positions of the noisy prefix.</summary>
    UniformPositions,
}

/// <summary>
/// Selective copying (MAD and Mamba §4.1.1; docs/tasks.md#selective-copying). Copy token V − 1, blank ("noise") token V − 2,
/// data tokens [0, V − 2). A row of L: the count data tokens in order among L − 2·count − 1 blanks, the copy token,
/// then count blanks; the labels at those last count positions are the data tokens in order (not teacher-forced:
/// the inputs there are blanks), everything else is ignored. Train and test label the same positions.
/// </summary>
public static class SelectiveCopying
{
    public static TaskBatch Generate(int vocab, int seqLen, int count, BlankPlacement placement, int n, int seed, int sliceIndex = 0) =>
        MadSequence.Batch(n, seqLen, count, seed, (rng, input, label) => Write(rng, vocab, seqLen, count, placement, input, label),
            sliceIndex);

    public static void Write(Random rng, int vocab, int seqLen, int count, BlankPlacement placement, Span<long> input, Span<long> label)
    {
        long copy = vocab - 1, blank = vocab - 2;
        int prefix = seqLen - count - 1;                      // data tokens and their blanks
        var data = new long[count];
        for (int i = 0; i < count; i++) data[i] = rng.Next(vocab - 2);

        input.Fill(blank);
        label.Fill(TaskBatch.Ignore);
        foreach (var (at, i) in DataPositions(rng, prefix, count, placement).Select((p, i) => (p, i))) input[at] = data[i];
        input[prefix] = copy;
        for (int i = 0; i < count; i++) label[prefix + 1 + i] = data[i];
    }

    /// <summary>Increasing positions of the data tokens within the prefix of length <paramref name="prefix"/>.</summary>
    static int[] DataPositions(Random rng, int prefix, int count, BlankPlacement placement)
    {
        if (placement == BlankPlacement.UniformPositions)
            return Mqar.SampleDistinct(rng, 0, prefix, count).Order().ToArray();
        var blanksBefore = new int[count];
        for (int b = 0; b < prefix - count; b++) blanksBefore[rng.Next(count)]++;
        var at = new int[count];
        for (int i = 0, p = 0; i < count; i++) at[i] = p += blanksBefore[i] + (i == 0 ? 0 : 1);
        return at;
    }
}
