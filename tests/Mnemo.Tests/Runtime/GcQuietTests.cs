using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Training;
using Mnemo.Training;
using static TorchSharp.torch;

namespace Mnemo.Tests.Runtime;

/// <summary>
/// The crash of issue 13 item 11: TorchSharp's implicit Scalars finalized by a collection that another thread triggers
/// while libtorch still reads them (see <see cref="GcQuiet"/>). Without the quiet region the first test dies within
/// seconds on the machines measured (the test host aborts with "toFloat at c10/core/Scalar.h"), so it fails loudly.
/// </summary>
[Collection(TorchCollection.Name)]
[OwnsGcRegions]
public sealed class GcQuietTests
{
    /// <summary>
    /// Allocates garbage on another thread until disposed: collections at any moment outside a region. At most 64 KB per
    /// millisecond, so one thread cannot spend a region's 64 MB budget (which counts every thread's allocations) within
    /// a short stretch on a loaded machine; unthrottled it did, and the stretch then ran unprotected (a flaky failure).
    /// </summary>
    sealed class AllocationStress : IDisposable
    {
        volatile bool _stop;
        readonly Thread _thread;

        public AllocationStress()
        {
            _thread = new Thread(() =>
            {
                object? keep = null;
                while (!_stop)
                {
                    for (int i = 0; i < 256; i++) keep = new byte[256];
                    Thread.Sleep(1);
                }
                GC.KeepAlive(keep);
            })
            { IsBackground = true };
            _thread.Start();
        }

        public void Dispose()
        {
            _stop = true;
            _thread.Join();
        }
    }

    [Fact]
    public void Implicit_scalars_survive_collections_on_other_threads_inside_a_quiet_region()
    {
        TorchRuntime.Initialise();
        using var scope = NewDisposeScope();
        var a = randn(1 << 16);
        var b = randn(1 << 16);
        var expected = (a.to(ScalarType.Float64) + b.to(ScalarType.Float64)).to(ScalarType.Float32);
        using var stress = new AllocationStress();
        int wrong = 0;
        for (int block = 0; block < 800; block++)                                     // short stretches, as in training
        {
            using var quiet = GcQuiet.Enter();
            using var inner = NewDisposeScope();
            for (int i = 0; i < 20; i++)
                if (!((a + b) * 1.0).allclose(expected, 0, 0)) wrong++;            // alpha = 1 and 1.0: implicit Scalars
        }
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void Training_under_allocation_stress_matches_training_without()
    {
        var config = TrainerTests.Tiny(12) with
        {
            Model = TrainerTests.Tiny().Model with { Mixer = MixerKind.Titans, Deep = new() { ChunkSize = 4 } },
        };
        using var quiet = new Tmp.Dir();
        using var stressed = new Tmp.Dir();
        new Trainer(config, quiet.Path).Run(resume: false);
        using (new AllocationStress()) new Trainer(config, stressed.Path).Run(resume: false);
        Assert.Equal(TrainerTests.Metrics(quiet.Path), TrainerTests.Metrics(stressed.Path));
    }

    [Fact]
    public void Regions_nest_and_close()
    {
        using (GcQuiet.Enter())
        {
            using (GcQuiet.Enter()) Assert.True(GcQuiet.Active);
            Assert.True(GcQuiet.Active);
        }
        Assert.False(GcQuiet.Active);
    }

    [Fact]
    public void Renew_restarts_a_spent_region_inside_a_stretch_and_does_nothing_outside()
    {
        GcQuiet.Renew();
        Assert.False(GcQuiet.Active);
        using (GcQuiet.Enter())
        {
            // Spend the region's budget: the runtime ends it and collects.
            var keep = new List<byte[]>();
            for (long spent = 0; spent <= 8 * GcQuiet.Budget && GcQuiet.Active; spent += 1 << 16) keep.Add(new byte[1 << 16]);
            Assert.False(GcQuiet.Active);
            keep.Clear();
            GcQuiet.Renew();
            Assert.True(GcQuiet.Active);
        }
        Assert.False(GcQuiet.Active);
    }
}
