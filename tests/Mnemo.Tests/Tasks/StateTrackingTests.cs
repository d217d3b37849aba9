using Mnemo.Tasks;

namespace Mnemo.Tests.Tasks;

/// <summary>The state-tracking task (docs/tasks.md#state-tracking): its groups and its labels.</summary>
public class StateTrackingTests
{
    [Theory]
    [InlineData(TrackedGroup.Parity, 2)]
    [InlineData(TrackedGroup.S3, 6)]
    [InlineData(TrackedGroup.S5, 120)]
    public void Each_table_is_a_group_with_the_identity_first(TrackedGroup group, int order)
    {
        var table = StateTracking.Table(group);
        Assert.Equal(order, table.GetLength(0));
        var rng = new Random(3);
        for (int a = 0; a < order; a++)
        {
            Assert.Equal(a, table[0, a]);
            Assert.Equal(a, table[a, 0]);
            Assert.Equal(order, Enumerable.Range(0, order).Select(b => table[a, b]).Distinct().Count());   // a row is a permutation
            Assert.Contains(0, Enumerable.Range(0, order).Select(b => table[a, b]));                     // an inverse exists
        }
        for (int i = 0; i < 2000; i++)
        {
            int a = rng.Next(order), b = rng.Next(order), c = rng.Next(order);
            Assert.Equal(table[table[a, b], c], table[a, table[b, c]]);
        }
        bool abelian = Enumerable.Range(0, order).All(a => Enumerable.Range(0, order).All(b => table[a, b] == table[b, a]));
        Assert.Equal(group == TrackedGroup.Parity, abelian);
    }

    [Fact]
    public void Parity_labels_are_the_running_parity_of_the_bits()
    {
        var task = new StateTrackingConfig { Train = [new() { SeqLen = 40, NumExamples = 20 }] };
        var batch = task.TrainBatches()[0];
        for (int e = 0; e < 20; e++)
        {
            long parity = 0;
            for (int t = 0; t < 40; t++)
            {
                parity ^= batch.Inputs[e * 40 + t];
                Assert.Equal(parity, batch.Labels[e * 40 + t]);
            }
        }
    }

    [Fact]
    public void S5_labels_compose_the_permutations_read_so_far()
    {
        // Independent of the table: the permutations as arrays, in lexicographic order, composed directly.
        var perms = Lexicographic([0, 1, 2, 3, 4]).ToArray();
        var task = new StateTrackingConfig { Group = TrackedGroup.S5, Test = [new() { SeqLen = 30, NumExamples = 10, ScoreFrom = 12 }] };
        var batch = task.TestBatches()[0];
        for (int e = 0; e < 10; e++)
        {
            var state = new[] { 0, 1, 2, 3, 4 };
            for (int t = 0; t < 30; t++)
            {
                var x = perms[batch.Inputs[e * 30 + t]];
                state = [.. state.Select(i => x[i])];                      // apply the state so far, then x
                long expected = t < 12 ? TaskBatch.Ignore : Array.FindIndex(perms, p => p.SequenceEqual(state));
                Assert.Equal(expected, batch.Labels[e * 30 + t]);
            }
        }
    }

    [Fact]
    public void A_seed_gives_the_same_streams_and_slices_are_checked()
    {
        var task = new StateTrackingConfig { Group = TrackedGroup.S3 };
        Assert.Equal(task.TrainBatches()[0].Inputs, task.TrainBatches()[0].Inputs);
        Assert.NotEqual(task.TrainBatches()[0].Inputs.Take(64), task.TestBatches()[0].Inputs.Take(64));
        var bad = task with { Test = [new() { SeqLen = 8, ScoreFrom = 8 }], TestSeed = task.TrainSeed };
        var problems = bad.Validate().ToList();
        Assert.Contains(problems, p => p.Item1 == "test_seed");
        Assert.Contains(problems, p => p.Item1 == "test[0].score_from" && p.Item2.Contains("nothing to score"));
    }

    static IEnumerable<int[]> Lexicographic(int[] items) => items.Length == 0
        ? [[]]
        : items.SelectMany(first => Lexicographic([.. items.Where(i => i != first)]).Select(rest => (int[])[first, .. rest]));
}
