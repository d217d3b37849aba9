using Mnemo.Runtime;

namespace Mnemo.Tasks.Verbatim;

/// <summary>
/// The verbatim-repetition vignette generator (docs/tasks.md#verbatim-repetition; see <see cref="VerbatimConfig"/>). A vignette of
/// T tokens becomes a row of T − 1: inputs x[:-1], labels x[1:] where labelled, so list token j of a list starting at
/// s is predicted at position s + j − 1.
/// </summary>
public static class Verbatim
{
    /// <summary>Where things sit in a vignette: list 1 starts at List1, list 2 at List2 (token indices).</summary>
    public sealed record Layout(int Preface, int ListLen, int Filler, int Marker)
    {
        public static Layout Of(VerbatimConfig c, VerbatimSlice s) => new(c.PrefaceLen, s.ListLen, s.FillerLen, c.MarkerLen);
        public int List1 => Preface;
        public int List2 => Preface + ListLen + Filler + Marker;
        public int Tokens => List2 + ListLen;
        public int RowLen => Tokens - 1;
    }

    /// <summary>Example i's condition: repeat, permute, novel in turn, so every slice holds all three.</summary>
    public static ListCondition ConditionOf(int example) => (ListCondition)(example % 3);

    public static TaskBatch Generate(VerbatimConfig c, VerbatimSlice s, int seed, int sliceIndex, bool train)
    {
        var layout = Layout.Of(c, s);
        int l = layout.RowLen;
        return Examples.Generate(s.NumExamples, l, s.ListLen, seed, sliceIndex, (i, rng, input, label) =>
        {
            var x = Vignette(c, layout, ConditionOf(i), rng);
            x.AsSpan(0, l).CopyTo(input);
            for (int t = 0; t < l; t++)
            {
                int next = t + 1;
                bool inList = (next >= layout.List1 && next < layout.List1 + s.ListLen) || next >= layout.List2;
                bool scored = train ? c.LabelAll || next >= layout.List1 : inList;
                if (scored) label[t] = x[next];
            }
        });
    }

    /// <summary>The tokens of one vignette.</summary>
    public static long[] Vignette(VerbatimConfig c, Layout layout, ListCondition condition, Random rng)
    {
        int n = layout.ListLen;
        var nouns = Mqar.SampleDistinct(rng, 0, c.NumNouns, 2 * n);       // list 1, then the novel nouns
        var list1 = nouns[..n];
        int[] list2 = condition switch
        {
            ListCondition.Repeat => list1,
            ListCondition.Permute => Permutation(rng, list1),
            _ => nouns[n..],
        };
        var x = new long[layout.Tokens];
        int p = 0;
        for (int i = 0; i < layout.Preface; i++) x[p++] = c.FirstPreface + i;
        foreach (int w in list1) x[p++] = w;
        for (int i = 0; i < layout.Filler; i++) x[p++] = rng.Next(c.FirstFiller, c.VocabSize);
        for (int i = 0; i < layout.Marker; i++) x[p++] = c.FirstMarker + i;
        foreach (int w in list2) x[p++] = w;
        return x;
    }

    /// <summary>A uniformly random order of the list other than the list itself.</summary>
    static int[] Permutation(Random rng, int[] list)
    {
        while (true)
        {
            var order = Mqar.SampleDistinct(rng, 0, list.Length, list.Length);
            if (!order.SequenceEqual(Enumerable.Range(0, list.Length))) return order.Select(i => list[i]).ToArray();
        }
    }
}
