using Mnemo.Runtime;

namespace Mnemo.Tasks.Mad;

/// <summary>
/// What the MAD generators share (docs/tasks.md#mad): the key/value halves of the non-special vocabulary, a token
/// list with the target each token carries, and MAD's autoregressive shift into (inputs, labels).
/// </summary>
public sealed class MadSequence
{
    readonly List<long> _tokens = [];
    readonly List<long> _targets = [];

    public int Count => _tokens.Count;

    /// <summary>Keys are the lower half of the first <paramref name="nonSpecial"/> tokens, values the upper half.</summary>
    public static (int Lo, int Hi) Keys(int nonSpecial) => (0, nonSpecial / 2);
    public static (int Lo, int Hi) Values(int nonSpecial) => (nonSpecial / 2, nonSpecial);

    /// <summary>Appends tokens that are never a test target.</summary>
    public void Add(ReadOnlySpan<long> tokens) => Add(tokens, probed: false);

    public void Add(long token) => Add([token]);

    /// <summary>Appends tokens; probed ones are their own test targets (a recalled value).</summary>
    public void Add(ReadOnlySpan<long> tokens, bool probed)
    {
        foreach (long t in tokens)
        {
            _tokens.Add(t);
            _targets.Add(probed ? t : TaskBatch.Ignore);
        }
    }

    /// <summary>Left-pads with <paramref name="pad"/> (never a target) up to <paramref name="length"/> tokens.</summary>
    public void PadLeft(long pad, int length)
    {
        int n = length - _tokens.Count;
        if (n <= 0) return;
        _tokens.InsertRange(0, Enumerable.Repeat(pad, n));
        _targets.InsertRange(0, Enumerable.Repeat(TaskBatch.Ignore, n));
    }

    /// <summary>
    /// MAD's shift of n + 1 tokens x to rows of n: inputs x[:-1]; labels x[1:] for training (the full next-token
    /// sequence) or the targets shifted likewise for testing (probed values only).
    /// </summary>
    public void WriteShifted(bool train, Span<long> input, Span<long> label)
    {
        int n = _tokens.Count - 1;
        for (int t = 0; t < n; t++)
        {
            input[t] = _tokens[t];
            label[t] = train ? _tokens[t + 1] : _targets[t + 1];
        }
    }

    /// <summary>Unshifted rows: every token is an input, its target the label at the same position.</summary>
    public void Write(Span<long> input, Span<long> label)
    {
        for (int t = 0; t < _tokens.Count; t++)
        {
            input[t] = _tokens[t];
            label[t] = _targets[t];
        }
    }

    /// <summary>A motif: <paramref name="size"/> distinct tokens of [lo, hi) in random order (a uniform draw from
    /// MAD's list of permutations).</summary>
    public static long[] Motif(Random rng, (int Lo, int Hi) range, int size) =>
        Mqar.SampleDistinct(rng, range.Lo, range.Hi, size).Select(t => (long)t).ToArray();

    /// <summary>n examples of row length <paramref name="rowLen"/>, example i written from its own stream seeded by
    /// (seed, slice, i).</summary>
    public static TaskBatch Batch(
        int n, int rowLen, int itemsPerExample, int seed, Action<Random, Span<long>, Span<long>> write, int sliceIndex = 0) =>
        Examples.Generate(n, rowLen, itemsPerExample, seed, sliceIndex, (_, rng, input, label) => write(rng, input, label));
}
