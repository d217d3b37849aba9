using System.Runtime;

namespace Mnemo.Runtime;

/// <summary>
/// A stretch of libtorch calls during which the .NET garbage collector does not run.
/// <para>
/// Why: TorchSharp converts numbers to native <c>Scalar</c>s implicitly — <c>a + b</c> passes alpha = 1, <c>a * 0.5</c>
/// passes 0.5, its optimizers do the same — and leaves them to the finalizer. Once the native call has the Scalar's
/// pointer, nothing managed references it, so a collection triggered by any thread while the call runs can finalize it
/// and free the native value that libtorch is still reading. The process then dies with "Expected false to be true …
/// Exception raised from toFloat at c10/core/Scalar.h" (or computes with a garbage alpha). Under allocation stress from a
/// second thread this happens within seconds (tests/Mnemo.Tests/Runtime/GcQuietTests.cs).
/// </para>
/// <para>
/// How: <see cref="GC.TryStartNoGCRegion(long)"/> for up to <see cref="Budget"/> bytes of managed allocation (all
/// threads together; a training step allocates a few MB of wrappers), ended when the stretch ends, where no native
/// call is in flight and the stretch's Scalars are garbage anyway. Regions are process-wide, so the first of
/// overlapping stretches (other threads, nesting) starts one and the last ends it. If the budget runs out, the runtime
/// collects and the rest of that stretch is unprotected until a nested stretch opens a new region: a mitigation of a
/// TorchSharp defect, not a cure.
/// </para>
/// </summary>
readonly struct GcQuiet : IDisposable
{
    /// <summary>Managed bytes a stretch may allocate before the runtime collects anyway.</summary>
    public const long Budget = 64L << 20;

    /// <summary>
    /// <c>MNEMO_GC_QUIET=0</c> turns the regions off, to measure what they cost (docs/architecture.md) or to reproduce the
    /// crash they guard against; anything else leaves them on.
    /// </summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("MNEMO_GC_QUIET") != "0";

    static readonly object Gate = new();
    static int _depth;

    /// <summary>Whether a region is open now (for tests and diagnostics).</summary>
    public static bool Active => GCSettings.LatencyMode == GCLatencyMode.NoGCRegion;

    readonly bool _entered;

    GcQuiet(bool entered) => _entered = entered;

    public static GcQuiet Enter()
    {
        lock (Gate)
        {
            // Also when nested: an outer stretch whose budget ran out is unprotected, and this one can open a new region.
            _depth++;
            if (Enabled && !Active) Open();
            return new GcQuiet(true);
        }
    }

    /// <summary>
    /// Between two pieces of a long stretch, where no native call is in flight: collects (finalizing the pieces' Scalars
    /// now) and restarts the region with the full <see cref="Budget"/>, so a stretch that allocates more than the budget
    /// in all (EM-LLM's block-by-block reading) stays protected piece by piece. Outside any stretch it does nothing. Call
    /// it only when no other thread is inside a stretch: the region is process-wide.
    /// </summary>
    public static void Renew()
    {
        lock (Gate)
        {
            if (!Enabled || _depth == 0) return;
            if (Active)
            {
                try { GC.EndNoGCRegion(); }
                catch (InvalidOperationException) { }
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Open();
        }
    }

    static void Open()
    {
        try { GC.TryStartNoGCRegion(Budget); }
        catch (InvalidOperationException) { }                  // another component opened one: it is quiet anyway
        catch (ArgumentOutOfRangeException) { }                // a runtime whose limit is lower: run unprotected
    }

    public void Dispose()
    {
        if (!_entered) return;
        lock (Gate)
        {
            if (--_depth == 0 && Active)
            {
                try { GC.EndNoGCRegion(); }
                catch (InvalidOperationException) { }          // the budget ran out and the runtime ended it
            }
        }
    }
}
