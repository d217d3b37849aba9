using Mnemo.Runtime;
using Mnemo.Text;

namespace Mnemo.Tasks;

/// <summary>
/// SORT, Sequence Order Recall (Pink et al. 2024; docs/tasks.md#sort), in-context, on tokens. An example is
/// <code>
///   excerpt (L_E tokens)  SEP  A (L_S)  SEP  B (L_S)  QUERY  → A_FIRST | B_FIRST
/// </code>
/// The excerpt is running text of the book from a random sentence start; A and B are two non-overlapping segments
/// of it whose starts are a distance d apart, d drawn uniformly in one of four bins with edges
/// [L_S, L_E/4, L_E/3, L_E/2, 0.8·L_E] (or [L_S, 1000, L_E/4, L_E/2, 0.8·L_E] for L_E ≥ 5000, as in Book-SORT).
/// Even-indexed examples present the earlier segment as A, odd ones as B, so each order is exactly half (chance is
/// 50 %). The only label is at the last input (QUERY). Segment positions are redrawn (a few times) when a segment's
/// tokens also occur elsewhere in the excerpt, since such a pair has no single right answer.
/// Unlike Book-SORT, segments start at any token, not at sentence boundaries (the excerpt does start at one): at
/// these lengths a sentence-aligned start would leave too few distinct positions per distance bin.
/// </summary>
public static class Sort
{
    public const int BinCount = 4;
    const int Redraws = 32;

    /// <summary>Edges of the distance bins between segment starts (Book-SORT's, in tokens).</summary>
    public static int[] DistanceEdges(int excerptLen, int segmentLen) => excerptLen < 5000
        ? [segmentLen, excerptLen / 4, excerptLen / 3, excerptLen / 2, excerptLen * 4 / 5]
        : [segmentLen, 1000, excerptLen / 4, excerptLen / 2, excerptLen * 4 / 5];

    /// <summary>Training batches: one per slice, the distance bin drawn uniformly per example.</summary>
    public static TaskBatch[] GenerateTrain(SortConfig task, SortSlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, bin: null, seed, i)).ToArray();

    /// <summary>Test batches: one per (slice, distance bin), in slice order then bin order.</summary>
    public static TaskBatch[] GenerateTest(SortConfig task, SortSlice[] slices, int seed) =>
        slices.SelectMany(s => Enumerable.Range(0, BinCount).Select(b => (s, b)))
            .Select((sb, i) => Generate(task, sb.s, sb.b, seed, i)).ToArray();

    /// <summary>What each test batch holds: its length and distance range (in tokens).</summary>
    public static IReadOnlyList<SliceBin> Bins(SortSlice[] slices) => slices.SelectMany(s =>
    {
        var e = DistanceEdges(s.ExcerptLen, s.SegmentLen);
        return Enumerable.Range(0, BinCount).Select(b => new SliceBin(s.SeqLen, "distance", e[b], e[b + 1]));
    }).ToList();

    public static TaskBatch Generate(SortConfig task, SortSlice slice, int? bin, int seed, int batchIndex)
    {
        int l = slice.SeqLen;
        var book = task.Text.Book();
        var edges = DistanceEdges(slice.ExcerptLen, slice.SegmentLen);
        return Examples.Generate(slice.NumExamples, l, 1, seed, batchIndex, (i, rng, row, label) =>
        {
            int b = bin ?? rng.Next(BinCount);
            var (excerpt, _) = book.Take(rng.Next(book.SentenceCount), slice.ExcerptLen);
            var (first, second) = Segments(excerpt, slice.SegmentLen, rng.Next(edges[b], edges[b + 1]), rng);
            bool earlierFirst = i % 2 == 0;
            var (a, bStart) = earlierFirst ? (first, second) : (second, first);

            int p = 0;
            foreach (long t in excerpt) row[p++] = t;
            row[p++] = task.Separator;
            excerpt.AsSpan(a, slice.SegmentLen).CopyTo(row[p..]);
            p += slice.SegmentLen;
            row[p++] = task.Separator;
            excerpt.AsSpan(bStart, slice.SegmentLen).CopyTo(row[p..]);
            p += slice.SegmentLen;
            row[p] = task.QueryMarker;
            label[l - 1] = earlierFirst ? task.AFirst : task.BFirst;
        });
    }

    /// <summary>Starts of two segments of length <paramref name="len"/>, <paramref name="distance"/> apart, inside
    /// the excerpt; redrawn while either segment's tokens also appear at another offset.</summary>
    public static (int First, int Second) Segments(long[] excerpt, int len, int distance, Random rng)
    {
        int first = 0;
        for (int attempt = 0; attempt < Redraws; attempt++)
        {
            first = rng.Next(excerpt.Length - len - distance + 1);
            if (Unique(excerpt, first, len) && Unique(excerpt, first + distance, len)) break;
        }
        return (first, first + distance);
    }

    /// <summary>True when excerpt[start..start+len] occurs at no other offset of the excerpt.</summary>
    public static bool Unique(long[] excerpt, int start, int len)
    {
        var segment = excerpt.AsSpan(start, len);
        for (int o = 0; o + len <= excerpt.Length; o++)
            if (o != start && excerpt.AsSpan(o, len).SequenceEqual(segment)) return false;
        return true;
    }
}
