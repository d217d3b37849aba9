using System.CommandLine;

namespace Mnemo.Cli.Commands;

/// <summary>Options every sweep-running command shares (sweep and its aliases demo, extrapolate, collapse).</summary>
static class SweepOptions
{
    /// <summary>--threads of a sweep worker: 0 shares the cores among the workers training at the moment a run is claimed
    /// (Mnemo.Sweeps.SweepRunner.WorkerThreads), so several workers on one machine do not oversubscribe it.</summary>
    public static Option<int> Threads() => new("--threads")
    {
        Description = "libtorch threads per worker (0 = the cores shared among the workers training now)",
    };
}
