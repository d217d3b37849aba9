using Mnemo.Experiments;
using Mnemo.Memory.Sparse;
using Mnemo.Runtime;

namespace Mnemo.Tests.Memory;

/// <summary>
/// Sparsey's code selection (familiar items get their stored code back, novel ones a random code, familiarity as
/// defined), single-trial sequence storage and replay, and codes that depend on the temporal context.
/// </summary>
[Collection(TorchCollection.Name)]
public class SparseyTests
{
    static readonly SparseyConfig Small = new() { Inputs = 64, Modules = 8, Cells = 8 };

    static int[] Item(params int[] bits) => bits;

    [Fact]
    public void A_stored_sequence_replays_exactly_from_its_first_item()
    {
        var mac = new SparseyMac(Small);
        int[][] sequence = [Item(0, 5, 9, 20), Item(3, 7, 30, 41), Item(11, 12, 50, 63), Item(2, 8, 33, 60)];
        mac.Learn(sequence, new Random(1));
        Assert.Equal(sequence[1..], mac.Replay(sequence[0], sequence.Length, active: 4));
    }

    [Fact]
    public void A_familiar_item_gets_its_stored_code_and_a_novel_one_a_random_code()
    {
        var mac = new SparseyMac(Small);
        var known = Item(1, 2, 3, 4, 5, 6);
        var stored = mac.Learn([known], new Random(2))[0];
        var rng = new Random(3);
        // G = 1: η = 1 + χK = 801, so each module keeps its stored winner with probability 801 / (801 + 7 · 1.0007) ≈ 0.991
        int same = Enumerable.Range(0, 200).Sum(_ => mac.Code(known, null, rng).Intersect(stored).Count());
        Assert.Equal(1.0, mac.Familiarity);
        Assert.True(same >= 0.98 * 200 * Small.Modules, $"the stored winners came back in {same} of {200 * Small.Modules} module draws");

        var novel = Item(40, 41, 42, 43, 44, 45);                                    // shares no bit: G = 0, every cell equally likely
        var counts = new int[Small.Cells];
        for (int draw = 0; draw < 4000; draw++) counts[mac.Code(novel, null, rng)[0]]++;  // module 0's winner is its cell index
        Assert.Equal(0.0, mac.Familiarity);
        Assert.All(counts, n => Assert.InRange(n, 4000 / Small.Cells * 0.8, 4000 / Small.Cells * 1.2));
    }

    [Fact]
    public void Familiarity_is_the_mean_over_modules_of_the_largest_input()
    {
        var mac = new SparseyMac(Small);
        mac.Learn([Item(1, 2, 3, 4)], new Random(4));
        mac.Code(Item(1, 2, 50, 51), null, null);                                    // half the stored item: U = 1/2 on its code
        Assert.Equal(0.5, mac.Familiarity, 12);
    }

    [Fact]
    public void The_same_item_in_two_contexts_gets_two_codes_and_both_sequences_replay()
    {
        var mac = new SparseyMac(Small);
        var shared = Item(10, 11, 12, 13);
        int[][] a = [Item(0, 1, 2, 3), shared, Item(20, 21, 22, 23)], b = [Item(30, 31, 32, 33), shared, Item(40, 41, 42, 43)];
        var rng = new Random(5);
        var (codesA, codesB) = (mac.Learn(a, rng), mac.Learn(b, rng));
        Assert.True(codesA[1].Intersect(codesB[1]).Count() < Small.Modules / 2, "the shared item's two codes share under half their cells");
        Assert.Equal(a[1..], mac.Replay(a[0], 3, 4));
        Assert.Equal(b[1..], mac.Replay(b[0], 3, 4));

        // A matrix memory keyed by the item alone cannot tell the two successors of the shared item apart.
        var matrix = new MatrixStore(Small.Inputs, delta: true);
        matrix.Store([a, b], new Random(6));
        bool both = matrix.Replay(a[0], 3, 4).SequenceEqual(a[1..], Comparer) && matrix.Replay(b[0], 3, 4).SequenceEqual(b[1..], Comparer);
        Assert.False(both);
    }

    [Fact]
    public void Matrix_memories_replay_a_few_orthogonal_transitions_exactly()
    {
        int[][] sequence = [Item(0, 1), Item(2, 3), Item(4, 5), Item(6, 7)];
        foreach (bool delta in new[] { false, true })
        {
            var store = new MatrixStore(16, delta);
            store.Store([sequence], new Random(7));
            Assert.Equal(sequence[1..], store.Replay(sequence[0], 4, 2));
        }
    }

    [Fact]
    public void Storage_is_counted_in_bits()
    {
        Assert.Equal(64L * 64 + 64L * 64, Small.Bits);
        Assert.Equal(32L * 16 * 16, new MatrixStore(16, delta: false).Bits);
    }

    [Fact]
    public void The_study_is_seeded_and_its_sequences_have_the_asked_similarity()
    {
        var c = new SparseyStudyConfig
        {
            Inputs = 64, Active = 8, Length = 3, Modules = 6, Cells = 6, Sequences = [4], Similarities = [0.75], SimilarSequences = 4,
            Prototypes = 2, Trials = 2,
        };
        var first = SparseyCapacity.Run(c, 3);
        var again = SparseyCapacity.Run(c, 3);
        Assert.Equal(first.Select(p => p.Exact.Sum() + p.Overlap.Sum()), again.Select(p => p.Exact.Sum() + p.Overlap.Sum()));
        Assert.Equal(["sparsey", "linear", "delta"], first.Where(p => p.Sweep == "load").Select(p => p.Memory));

        var sequences = SparseyCapacity.Sequences(c, 50, 0.75, seed: 9);
        Assert.All(sequences.SelectMany(s => s), item => Assert.Equal(8, item.Distinct().Count()));
        var later = sequences.SelectMany(s => s.Skip(1)).ToArray();                    // each keeps 6 of 8 bits of one of 2 prototypes
        var byOverlap = later.Select(x => later.Max(y => ReferenceEquals(x, y) ? 0 : x.Intersect(y).Count())).ToArray();
        Assert.True(byOverlap.Average() >= 4, $"later items share {byOverlap.Average():F1} bits with their closest other item");
    }

    [Fact]
    public void Bad_settings_name_the_field()
    {
        Assert.Contains("active bits", Assert.Throws<MnemoException>(() => new SparseyStudyConfig { Active = 100 }.Validate()).Message);
        Assert.Contains("cells", Assert.Throws<MnemoException>(() => new SparseyStudyConfig { Cells = 1 }.Validate()).Message);
    }

    static readonly IEqualityComparer<int[]> Comparer = EqualityComparer<int[]>.Create((x, y) => x!.SequenceEqual(y!), x => x.Length);
}
