namespace Mnemo.Runtime;

/// <summary>
/// Keeps a long loop's resident memory near what it needed at first (docs/architecture.md#long-streams). A loop of
/// equal steps keeps the same live memory, yet glibc's heap, tuned to keep freed memory for reuse
/// (<see cref="NativeAllocator"/>), fragments under it and resident memory grows. Call <see cref="Check"/> after each
/// step: the first call sets the baseline, and whenever resident memory exceeds the baseline by more than the slack
/// the free pages go back to the OS (<see cref="NativeAllocator.ReleaseFreePages"/>). If even that leaves it over, the
/// baseline rises to what is left, so memory that is really in use is not trimmed again every step.
/// </summary>
/// <param name="slack">how far above the baseline resident memory may grow, as a fraction of it</param>
public sealed class ResidentGuard(double slack)
{
    /// <summary>
    /// The training loops' slack: resident memory may double. A tighter one trims so often that the pages handed back
    /// are faulted in again step after step (docs/architecture.md#training-loops).
    /// </summary>
    public const double TrainingSlack = 1.0;

    long? _baseline;

    /// <summary>How often the free pages were handed back.</summary>
    public int Releases { get; private set; }

    public void Check()
    {
        if (NativeAllocator.ResidentBytes() is not { } resident) return;
        _baseline ??= resident;
        if (resident <= _baseline * (1 + slack) || !NativeAllocator.ReleaseFreePages()) return;
        Releases++;
        if (NativeAllocator.ResidentBytes() is { } left && left > _baseline * (1 + slack)) _baseline = left;
    }
}
