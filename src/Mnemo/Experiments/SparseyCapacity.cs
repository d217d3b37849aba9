using Mnemo.Memory.Matrix;
using Mnemo.Memory.Sparse;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>The items, the sweeps and the memories' sizes of <see cref="SparseyCapacity"/> (docs/sparsey.md#measurements).</summary>
public sealed record SparseyStudyConfig
{
    /// <summary>N, bits per item; the matrix memories are N × N.</summary>
    public int Inputs { get; init; } = 128;
    /// <summary>m, bits on in each item.</summary>
    public int Active { get; init; } = 10;
    /// <summary>Items per sequence.</summary>
    public int Length { get; init; } = 5;
    public int Modules { get; init; } = 24;
    public int Cells { get; init; } = 28;
    /// <summary>Sparsey's G⁻ (<see cref="SparseyConfig.FamiliarityFloor"/>).</summary>
    public double FamiliarityFloor { get; init; } = new SparseyConfig().FamiliarityFloor;
    /// <summary>The load sweep: sequences stored (of random items).</summary>
    public int[] Sequences { get; init; } = [10, 20, 40, 80, 160, 320];
    /// <summary>The interference sweep: how much of a prototype every item after the first keeps.</summary>
    public double[] Similarities { get; init; } = [0, 0.5, 0.7, 0.8, 0.9];
    /// <summary>Sequences stored in the interference sweep.</summary>
    public int SimilarSequences { get; init; } = 10;
    /// <summary>Prototypes the similar items vary.</summary>
    public int Prototypes { get; init; } = 8;
    public int Trials { get; init; } = 5;

    public SparseyConfig Mac => new() { Inputs = Inputs, Modules = Modules, Cells = Cells, FamiliarityFloor = FamiliarityFloor };

    public void Validate()
    {
        if (Active < 1 || Active > Inputs / 2)
            throw new MnemoException($"active bits must be in [1, inputs / 2 = {Inputs / 2}], got {Active}");
        if (Length < 2) throw new MnemoException($"a sequence needs at least 2 items, got {Length}");
        if (Trials < 1) throw new MnemoException($"trials must be at least 1, got {Trials}");
        if (Sequences.Length == 0 || Sequences.Any(s => s < 1)) throw new MnemoException("sequences: give counts of at least 1");
        if (Similarities.Any(s => s is < 0 or > 1)) throw new MnemoException("similarities must be in [0, 1]");
        if (Prototypes < 1 || SimilarSequences < 1) throw new MnemoException("prototypes and similar sequences must be at least 1");
        try { Mac.Validate(); }
        catch (ArgumentException e) { throw new MnemoException(e.Message); }
    }
}

/// <summary>A memory that stores sequences of items and replays one from its first item.</summary>
public interface ISequenceStore
{
    string Name { get; }
    /// <summary>Storage, in bits.</summary>
    long Bits { get; }
    void Store(IReadOnlyList<int[][]> sequences, Random rng);
    /// <summary>The <paramref name="length"/> − 1 items after <paramref name="cue"/>, each its active bits.</summary>
    int[][] Replay(int[] cue, int length, int active);
    /// <summary>A binary memory's share of bottom-up and of horizontal weights set (null for a real-valued one).</summary>
    (double Up, double Across)? WeightsSet => null;
}

/// <summary>Sparsey: one <see cref="SparseyMac"/>.</summary>
public sealed class SparseyStore(SparseyConfig c) : ISequenceStore
{
    readonly SparseyMac _mac = new(c);
    public string Name => "sparsey";
    public long Bits => c.Bits;
    public void Store(IReadOnlyList<int[][]> sequences, Random rng) { foreach (var s in sequences) _mac.Learn(s, rng); }
    public int[][] Replay(int[] cue, int length, int active) => _mac.Replay(cue, length, active);
    public (double Up, double Across)? WeightsSet => _mac.Saturation;
}

/// <summary>
/// A matrix memory S (N × N, fp32) that stores each transition as the key item → the next item, written by Mnemo's own
/// kernels: the linear rule S += kᵀv (<see cref="GatedLinearKernel"/>, no gate) or the delta rule with β = 1
/// (<see cref="DeltaKernel"/>). Keys are the item's indicator scaled to unit length; a read q S is decoded to its m largest
/// entries, which become the next key.
/// </summary>
public sealed class MatrixStore(int inputs, bool delta) : ISequenceStore
{
    Tensor _state = zeros(1, 1, inputs, inputs);                                        // [B = 1, H = 1, N, N]
    public string Name => delta ? "delta" : "linear";
    public long Bits => 32L * inputs * inputs;

    public void Store(IReadOnlyList<int[][]> sequences, Random rng)
    {
        using var one = ones(1, 1);                                                     // β = 1
        foreach (var s in sequences)
            for (int t = 0; t + 1 < s.Length; t++)
            {
                using var scope = NewDisposeScope();                                    // one write's temporaries
                var (k, v) = (Key(s[t]), Indicator(s[t + 1]));
                var next = delta ? DeltaKernel.Step(k, k, v, null, one, _state).State : GatedLinearKernel.Step(k, k, v, null, _state).State;
                _state.Dispose();
                _state = next.MoveToOuterDisposeScope();
            }
    }

    public int[][] Replay(int[] cue, int length, int active)
    {
        using var scope = NewDisposeScope();
        var items = new int[length - 1][];
        var item = cue;
        for (int t = 0; t < items.Length; t++)
        {
            var read = Key(item).unsqueeze(-2).matmul(_state).flatten();                // q S [N]
            item = items[t] = [.. read.topk(active).indexes.data<long>().ToArray().Select(i => (int)i).Order()];
        }
        return items;
    }

    Tensor Indicator(int[] item)
    {
        var x = zeros(inputs);
        x.index_put_(1f, tensor(item.Select(i => (long)i).ToArray()));
        return x.view(1, 1, inputs);                                                    // [B, H, N]
    }

    Tensor Key(int[] item) => Indicator(item) / MathF.Sqrt(item.Length);
}

/// <summary>Recall of one memory at one point of a sweep: per trial, the fraction of replayed items exactly right, the
/// mean fraction of their bits right, and (Sparsey) the share of bottom-up and of horizontal weights set after storing.</summary>
public sealed record SparseyPoint(string Memory, string Sweep, double X, long Bits, double[] Exact, double[] Overlap, double[]? UpSet,
    double[]? AcrossSet);

/// <summary>
/// Sparsey's sequence capacity side by side with the linear and delta matrix memories (docs/sparsey.md#measurements):
/// store S sequences of random sparse items and replay each from its first item (the load sweep), or store sequences
/// whose items after the first are variants of a few shared prototypes, for a growing similarity (the interference sweep).
/// </summary>
public static class SparseyCapacity
{
    public static IReadOnlyList<ISequenceStore> Stores(SparseyStudyConfig c) =>
        [new SparseyStore(c.Mac), new MatrixStore(c.Inputs, delta: false), new MatrixStore(c.Inputs, delta: true)];

    public static List<SparseyPoint> Run(SparseyStudyConfig c, int seed, Action<string>? log = null)
    {
        c.Validate();
        var points = new List<SparseyPoint>();
        foreach (int count in c.Sequences)
            points.AddRange(Measure(c, "load", count * c.Length,
                trial => Sequences(c, count, 0, SeedMixer.Derive(seed, 1, count, trial)), seed));
        log?.Invoke($"load sweep done ({c.Sequences.Length} points)");
        foreach (double similarity in c.Similarities)
            points.AddRange(Measure(c, "similarity", similarity,
                trial => Sequences(c, c.SimilarSequences, similarity, SeedMixer.Derive(seed, 2, (long)(similarity * 1000), trial)), seed));
        log?.Invoke($"interference sweep done ({c.Similarities.Length} points)");
        return points;
    }

    static IEnumerable<SparseyPoint> Measure(SparseyStudyConfig c, string sweep, double x, Func<int, int[][][]> sequencesOf, int seed)
    {
        var results = new Dictionary<string, (long Bits, double[] Exact, double[] Overlap, double[] Up, double[] Across)>();
        for (int trial = 0; trial < c.Trials; trial++)
        {
            var sequences = sequencesOf(trial);
            foreach (var store in Stores(c))
            {
                store.Store(sequences, new Random(SeedMixer.Derive(seed, 3, trial)));
                double exact = 0, overlap = 0;
                foreach (var s in sequences)
                {
                    var replayed = store.Replay(s[0], c.Length, c.Active);
                    for (int t = 0; t < replayed.Length; t++)
                    {
                        int hits = replayed[t].Intersect(s[t + 1]).Count();
                        overlap += (double)hits / c.Active;
                        exact += hits == c.Active ? 1 : 0;
                    }
                }
                int items = sequences.Length * (c.Length - 1);
                if (!results.TryGetValue(store.Name, out var r))
                {
                    double[] Trials() => new double[c.Trials];
                    results[store.Name] = r = (store.Bits, Trials(), Trials(), Trials(), Trials());
                }
                (r.Exact[trial], r.Overlap[trial]) = (exact / items, overlap / items);
                (r.Up[trial], r.Across[trial]) = store.WeightsSet ?? (double.NaN, double.NaN);
            }
        }
        return results.Select(r => new SparseyPoint(r.Key, sweep, x, r.Value.Bits, r.Value.Exact, r.Value.Overlap,
            double.IsNaN(r.Value.Up[0]) ? null : r.Value.Up, double.IsNaN(r.Value.Across[0]) ? null : r.Value.Across));
    }

    /// <summary>
    /// <paramref name="count"/> sequences of items, each m distinct bits of N. The first item of every sequence is random;
    /// with similarity s &gt; 0 every later item keeps round(s·m) bits of one of the prototypes (chosen at random) and draws
    /// the rest at random from the bits outside it.
    /// </summary>
    public static int[][][] Sequences(SparseyStudyConfig c, int count, double similarity, int seed)
    {
        var rng = new Random(seed);
        int[] Pick(IEnumerable<int> from, int n) => [.. from.OrderBy(_ => rng.Next()).Take(n)];
        var prototypes = Enumerable.Range(0, c.Prototypes).Select(_ => Pick(Enumerable.Range(0, c.Inputs), c.Active)).ToArray();
        int kept = (int)Math.Round(similarity * c.Active);
        return [.. Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, c.Length).Select(t =>
        {
            if (t == 0 || similarity == 0) return Pick(Enumerable.Range(0, c.Inputs), c.Active).Order().ToArray();
            var prototype = prototypes[rng.Next(prototypes.Length)];
            var keep = Pick(prototype, kept);
            return keep.Concat(Pick(Enumerable.Range(0, c.Inputs).Except(prototype), c.Active - kept)).Order().ToArray();
        }).ToArray())];
    }
}
