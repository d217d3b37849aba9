using Mnemo.Runtime;

namespace Mnemo.Tasks;

/// <summary>
/// Token-level passkey retrieval (S-NIAH-1 without a tokenizer). One example of length L is built as L + 1 tokens
/// and shifted, like MQAR:
/// <code>
///   haystack[..at]  NEEDLE key d1 … dn  haystack[at..]  QUERY key d1 … dn
/// </code>
/// inputs = x[:-1]; the labels are the n answer digits, at the positions of "key d1 … d(n−1)" after QUERY (each
/// predicts the next digit); every other label is ignored. Teacher-forced exact match (all n digits right) equals
/// greedy decoding's exact match: greedy reproduces the answer exactly when every forced step's argmax is right.
/// <list type="bullet">
/// <item>The haystack is either one per-example sentence of filler tokens repeated (RULER's "noise"), the needle
/// inserted at a sentence boundary, or uniform filler tokens, the needle at any position.</item>
/// <item>Digits, markers and the key never occur in the haystack, so the needle is present exactly once.</item>
/// <item>Depth: the needle's slot among the haystack's boundaries, uniform or evenly spread over the slice.</item>
/// </list>
/// Each example has its own stream seeded by (seed, slice, index), as in <see cref="Mqar"/>.
/// </summary>
public static class Passkey
{
    public const int Digits = 10;
    public const int NeedleMarker = 10;
    public const int QueryMarker = 11;
    public const int FirstKey = 12;

    public static TaskBatch Generate(PasskeyConfig task, PasskeySlice slice, int seed, int sliceIndex)
    {
        return Examples.Generate(slice.NumExamples, slice.SeqLen, 1, seed, sliceIndex,
            (i, rng, input, label) => WriteExample(task, slice.SeqLen, NeedleSlot(task, slice, rng, i), rng, input, label));
    }

    public static TaskBatch[] GenerateAll(PasskeyConfig task, PasskeySlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, seed, i)).ToArray();

    /// <summary>Haystack tokens in an example of length L: L + 1 minus the needle and the query-with-answer.</summary>
    public static int HaystackLength(PasskeyConfig task, int seqLen) => HaystackLength(seqLen, task.NumDigits);

    /// <summary>Haystack tokens when the needle and the query each carry a marker, a key and an n-token value.</summary>
    public static int HaystackLength(int seqLen, int valueLen) => seqLen + 1 - 2 * (valueLen + 2);

    /// <summary>Positions the needle may start at: sentence boundaries (repeat) or every position (random).</summary>
    public static int Slots(PasskeyConfig task, int seqLen) => HaystackLength(task, seqLen) / Unit(task) + 1;

    static int Unit(PasskeyConfig task) => task.Haystack == HaystackKind.Repeat ? task.SentenceLen : 1;

    static int NeedleSlot(PasskeyConfig task, PasskeySlice slice, Random rng, int index)
    {
        int slots = Slots(task, slice.SeqLen);
        return slice.Depths == DepthKind.Uniform
            ? rng.Next(slots)
            : Math.Min(slots - 1, (int)((index + 0.5) / slice.NumExamples * slots));
    }

    static void WriteExample(PasskeyConfig task, int seqLen, int slot, Random rng, Span<long> input, Span<long> label)
    {
        int n = task.NumDigits, h = HaystackLength(task, seqLen);
        int firstFiller = FirstKey + task.NumKeys;
        long key = FirstKey + rng.Next(task.NumKeys);
        var digits = new long[n];
        for (int i = 0; i < n; i++) digits[i] = rng.Next(Digits);

        var haystack = new long[h];
        if (task.Haystack == HaystackKind.Repeat)
        {
            var sentence = new long[task.SentenceLen];
            for (int i = 0; i < sentence.Length; i++) sentence[i] = rng.Next(firstFiller, task.VocabSize);
            for (int i = 0; i < h; i++) haystack[i] = sentence[i % sentence.Length];
        }
        else
            for (int i = 0; i < h; i++) haystack[i] = rng.Next(firstFiller, task.VocabSize);

        Write(haystack, slot * Unit(task), NeedleMarker, QueryMarker, key, digits, input, label);
    }

    /// <summary>
    /// Lays out one needle example (shared by the S-NIAH analogues, <see cref="Niah"/>): x = haystack[..at],
    /// needle marker, key, value, haystack[at..], query marker, key, value; inputs = x[:-1], labels the value at
    /// the last n positions (teacher forced), everything else ignored.
    /// </summary>
    public static void Write(ReadOnlySpan<long> haystack, int at, long needleMarker, long queryMarker, long key,
        ReadOnlySpan<long> value, Span<long> input, Span<long> label)
    {
        int n = value.Length, seqLen = input.Length;
        var x = new long[seqLen + 1];
        int p = 0;
        foreach (long t in haystack[..at]) x[p++] = t;
        x[p++] = needleMarker;
        x[p++] = key;
        foreach (long d in value) x[p++] = d;
        foreach (long t in haystack[at..]) x[p++] = t;
        x[p++] = queryMarker;
        x[p++] = key;
        foreach (long d in value) x[p++] = d;
        if (p != x.Length)
            throw new ArgumentException($"haystack of {haystack.Length} tokens does not fit length {seqLen} with a {n}-token value");

        x.AsSpan(0, seqLen).CopyTo(input);
        label.Fill(TaskBatch.Ignore);
        for (int i = seqLen - n; i < seqLen; i++) label[i] = x[i + 1];
    }
}
