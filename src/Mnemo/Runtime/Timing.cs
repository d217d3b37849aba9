using System.Diagnostics;
using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>Wall-clock samples of one measured operation, in milliseconds.</summary>
/// <param name="MedianMs">median of the timed runs (the number reports use)</param>
/// <param name="BestMs">fastest timed run</param>
/// <param name="SamplesMs">every timed run, in order</param>
/// <param name="Warmup">untimed runs before them</param>
sealed record TimingStats(double MedianMs, double BestMs, double[] SamplesMs, int Warmup)
{
    /// <summary>These samples scaled by <paramref name="factor"/> (linear extrapolation to a longer sequence).</summary>
    public TimingStats Scaled(double factor) => new(MedianMs * factor, BestMs * factor, [.. SamplesMs.Select(s => s * factor)], Warmup);
}

/// <summary>
/// The timing discipline every benchmark uses: <c>warmup</c> untimed runs, then <c>repeats</c> timed runs. Each run
/// gets its own dispose scope, and the scope is disposed after the clock stops, so freeing a run's tensors is never
/// timed and memory does not grow from run to run. CPU libtorch ops are synchronous, so the clock sees all the work.
/// Each run is also a <see cref="GcQuiet"/> stretch (a collection mid-call can crash libtorch), opened before the clock
/// starts, so the collection that opening a stretch forces is not timed either.
/// </summary>
static class Timing
{
    public static TimingStats Measure(Action run, int warmup, int repeats)
    {
        if (repeats < 1) throw new MnemoException($"repeats must be at least 1, got {repeats}");
        for (int i = 0; i < warmup; i++)
        {
            using var scope = NewDisposeScope();
            using var quiet = GcQuiet.Enter();
            run();
        }
        var samples = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            using var scope = NewDisposeScope();
            using var quiet = GcQuiet.Enter();
            long start = Stopwatch.GetTimestamp();
            run();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        return new TimingStats(Statistics.Median(samples), samples.Min(), samples, warmup);
    }

}
