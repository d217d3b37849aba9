using System.CommandLine;
using Mnemo.Reporting;
using Mnemo.Sweeps;
using Mnemo.Training;

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

    /// <summary>A study's run of its bundled sweep: (sweep, folder, an observer per run, progress lines, cancel, threads) to
    /// its results, null when runs remain in other workers (MqarDemo.Run, Extrapolation.Run, StateCollapse.Run).</summary>
    public delegate T? Study<T>(SweepConfig sweep, string outDir, Func<SweepRun, ITrainingObserver?> observerFor,
        Action<string>? progress, CancellationToken cancel, int? threads) where T : class;

    /// <summary>
    /// Runs (or resumes) a study's sweep as one worker, a line per run; when the sweep is complete, prints the study's
    /// tables (<paramref name="show"/>, which returns the files the study wrote) and writes the sweep report. Returns the
    /// exit code: 0, or 130 when interrupted (the same command resumes).
    /// </summary>
    public static int RunStudy<T>(Study<T> study, SweepConfig sweep, string outDir, CancellationToken cancel, int threads,
        Func<T, string> show) where T : class
    {
        T? results;
        try
        {
            results = study(sweep, outDir, run => new RunLineObserver(run.Id), Console.WriteLine, cancel, threads);
        }
        catch (OperationCanceledException e)
        {
            Console.Error.WriteLine(e.Message);
            return 130;
        }
        if (results is null) return 0;
        string wrote = show(results);
        string report = new SweepLedger(outDir).Locked(() => SweepReport.Write(outDir));
        Console.WriteLine($"wrote {wrote} and the sweep report {report}");
        return 0;
    }
}
