using System.Collections.Concurrent;
using Mnemo.Runtime;
using TorchSharp;

namespace Mnemo.Tests.Runtime;

/// <summary>Mnemo's kernels on libtorch's OpenMP threads (docs/architecture.md#two-thread-pools): every item runs once,
/// each thread's local is made and finished once, and a body's exception reaches the caller.</summary>
[Collection(TorchCollection.Name)]                 // sets libtorch's thread count
public class CoreTeamTests
{
    /// <summary>libtorch's thread count at n until disposed.</summary>
    static ThreadCount Threads(int n) => new(n);

    sealed class ThreadCount : IDisposable
    {
        readonly int _before = torch.get_num_threads();
        public ThreadCount(int n) => torch.set_num_threads(n);
        public void Dispose() => torch.set_num_threads(_before);
    }

    [Fact]
    public void On_linux_the_kernels_run_on_libtorchs_openmp_threads()
    {
        TorchRuntime.Initialise();
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(CoreTeam.OnOpenMp, CoreTeam.Status);
        Assert.StartsWith("libtorch's OpenMP threads (libgomp", CoreTeam.Status);
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 2)]
    [InlineData(7, 2)]
    [InlineData(1000, 2)]
    [InlineData(1000, 1)]
    public void Every_item_runs_exactly_once_and_every_threads_local_is_finished(int count, int threads)
    {
        using var _ = Threads(threads);
        var runs = new int[count];
        var threadIds = new ConcurrentBag<int>();
        var made = new ConcurrentBag<List<int>>();
        var finished = new ConcurrentBag<List<int>>();
        CoreTeam.For(count, () =>
        {
            var local = new List<int>();
            made.Add(local);
            return local;
        }, (local, i) =>
        {
            Interlocked.Increment(ref runs[i]);
            local.Add(i);
            threadIds.Add(Environment.CurrentManagedThreadId);
        }, finished.Add);

        Assert.All(runs, r => Assert.Equal(1, r));
        Assert.Equal(made.Count, finished.Count);
        Assert.True(made.Count <= Math.Min(threads, count), $"{made.Count} locals for {threads} threads");
        Assert.Equal(Enumerable.Range(0, count), finished.SelectMany(l => l).Order());
        Assert.True(threadIds.Distinct().Count() <= threads);
    }

    [Fact]
    public void Nothing_runs_for_no_items()
    {
        int calls = 0;
        CoreTeam.For(0, () => Interlocked.Increment(ref calls), (_, _) => Interlocked.Increment(ref calls),
            _ => Interlocked.Increment(ref calls));
        Assert.Equal(0, calls);
    }

    [Fact]
    public void A_bodys_exception_reaches_the_caller_and_the_team_still_works()
    {
        using var _ = Threads(2);
        int finals = 0;
        var e = Assert.Throws<InvalidOperationException>(() => CoreTeam.For(100, () => 0,
            (_, i) => { if (i == 3) throw new InvalidOperationException("item 3 failed"); }, _ => Interlocked.Increment(ref finals)));
        Assert.Equal("item 3 failed", e.Message);
        Assert.True(finals >= 1);

        int sum = 0;
        CoreTeam.For(100, i => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    }

    [Fact]
    public void A_team_inside_a_team_runs_every_item_once_on_the_calling_thread()
    {
        using var _ = Threads(2);
        var counts = new int[4 * 8];
        int elsewhere = 0;
        CoreTeam.For(4, outer =>
        {
            int caller = Environment.CurrentManagedThreadId;
            CoreTeam.For(8, inner =>
            {
                Interlocked.Increment(ref counts[outer * 8 + inner]);
                if (Environment.CurrentManagedThreadId != caller) Interlocked.Increment(ref elsewhere);
            });
        });
        Assert.All(counts, c => Assert.Equal(1, c));
        if (CoreTeam.OnOpenMp) Assert.Equal(0, elsewhere);                    // libgomp's default: no nested teams
    }

    [Fact]
    public void Libtorch_computes_as_before_between_and_after_the_teams_regions()
    {
        using var _ = Threads(2);
        using var scope = torch.NewDisposeScope();
        var x = torch.arange(1 << 18, dtype: torch.float64);                 // large enough for libtorch's own threads
        double expected = (double)(1L << 18) * ((1L << 18) - 1) / 2;
        for (int round = 0; round < 3; round++)
        {
            int items = 0;
            CoreTeam.For(16, _ => Interlocked.Increment(ref items));
            Assert.Equal(16, items);
            Assert.Equal(expected, x.sum().item<double>());
        }
    }
}
