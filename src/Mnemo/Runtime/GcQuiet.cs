using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Mnemo.Runtime;

/// <summary>
/// A stretch of libtorch calls during which no finalizer runs.
/// <para>
/// Why: TorchSharp converts numbers to native <c>Scalar</c>s implicitly — <c>a + b</c> passes alpha = 1, <c>a * 0.5</c>
/// passes 0.5, its optimizers do the same — and leaves them to the finalizer. Once the native call has the Scalar's
/// pointer, nothing managed references it, so a collection triggered by any thread while the call runs can find it
/// dead, and the finalizer thread can then free the native value that libtorch is still reading. The process dies with
/// "Expected false to be true … Exception raised from toFloat at c10/core/Scalar.h" (or computes with a garbage alpha).
/// Under allocation stress from a second thread this happens within seconds (tests/Mnemo.Tests/Runtime/GcQuietTests.cs).
/// </para>
/// <para>
/// How: collections may run, but the finalizer thread is held. The first stretch to open collects generation 0 with an
/// object whose finalizer blocks (a <see cref="Hold"/>), and waits until the finalizer thread is inside it; 1 ms after the
/// last stretch closes it lets go, where no native call is in flight and the stretches' Scalars are garbage anyway
/// (a stretch that opens within that 1 ms, as the next token of a generation does, keeps the hold; see Linger). Earlier
/// this was a no-GC region, which the runtime opens with a full collection: a training step paid one, and the heap
/// grew by about a megabyte a step (docs/architecture.md#garbage-collection-and-torchsharps-implicit-scalars).
/// </para>
/// <para>
/// A hold ends early in two cases, after which the rest of the stretch is unprotected (a mitigation of a TorchSharp
/// defect, not a cure): a full collection (TorchSharp's own retry after a failed allocation collects and then waits for
/// the finalizers, which would otherwise wait for the stretch to end), and <see cref="MaxHold"/> (stretches on several
/// threads that keep overlapping would otherwise keep every finalizer waiting). A nested stretch that finds the
/// finalizers running holds them again.
/// </para>
/// </summary>
readonly struct GcQuiet : IDisposable
{
    /// <summary>The longest one hold keeps the finalizers waiting.</summary>
    public static readonly TimeSpan MaxHold = TimeSpan.FromSeconds(30);

    /// <summary>How long opening a stretch waits for the finalizer thread to reach the hold (it first runs those queued
    /// before it) before it goes on without.</summary>
    static readonly TimeSpan ReachWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a hold outlasts the last stretch: one that opens within it (the next generated token, the next step of a
    /// tight loop) finds the finalizers still held and pays no collection. Opening a hold costs a collection and two
    /// thread hand-offs, 0.09 ms measured, against 0.7 ms for a decoded token.
    /// </summary>
    static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(1);

    /// <summary>A stretch that opens while a hold lingers lets the finalizers run first (and holds them again) once the
    /// hold is this old, so back-to-back stretches do not keep every finalizer waiting.</summary>
    static readonly TimeSpan Refresh = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// <c>MNEMO_GC_QUIET=0</c> turns the holds off, to measure what they cost (docs/architecture.md) or to reproduce the
    /// crash they guard against; anything else leaves them on.
    /// </summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("MNEMO_GC_QUIET") != "0";

    static readonly object Gate = new();
    static int _depth;
    static long _asked;      // the latest hold asked for (holds are numbered from 1)
    static long _released;   // every hold up to this one is released
    static long _held;       // the hold the finalizer thread is inside now (0: none)
    static long _queued;     // the hold whose blocker is queued and not yet reached (0: none)
    static int _fullCollections;
    static long _heldSince, _closedAt;   // timestamps: the hold reached, the last stretch closed

    /// <summary>Whether a stretch is open and the finalizer thread held (for tests and diagnostics).</summary>
    public static bool Active
    {
        get
        {
            lock (Gate) return _depth > 0 && Holding;
        }
    }

    static bool Holding => _held != 0 && _held > _released;

    readonly bool _entered;

    GcQuiet(bool entered) => _entered = entered;

    public static GcQuiet Enter()
    {
        lock (Gate)
        {
            // Also when nested: an outer stretch whose hold ended early is unprotected, and this one can hold again.
            if (_depth++ == 0 && Holding && Stopwatch.GetElapsedTime(_heldSince) > Refresh) Release();
            if (Enabled && !Holding) Hold();
            return new GcQuiet(true);
        }
    }

    /// <summary>
    /// Between two pieces of a long stretch, where no native call is in flight: lets the finalizers run (the pieces'
    /// Scalars are freed now, not in the middle of a later piece), then holds them again, so a stretch that runs for
    /// longer than <see cref="MaxHold"/> (EM-LLM's block-by-block reading) stays protected piece by piece. Outside any
    /// stretch it does nothing. Call it only when no other thread is inside a stretch: the hold is process-wide.
    /// </summary>
    public static void Renew()
    {
        lock (Gate)
        {
            if (!Enabled || _depth == 0) return;
            Release();
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        lock (Gate)
            if (_depth > 0 && !Holding) Hold();
    }

    public void Dispose()
    {
        if (!_entered) return;
        lock (Gate)
        {
            if (--_depth > 0) return;
            _closedAt = Stopwatch.GetTimestamp();                          // the hold lingers (see Linger)
            Monitor.PulseAll(Gate);
        }
    }

    static void Release()
    {
        _released = _asked;
        Monitor.PulseAll(Gate);
    }

    /// <summary>
    /// Queues a <see cref="Blocker"/> for the finalizer thread, unless one is queued, not yet reached and not let go, and waits until
    /// the finalizer thread is inside it. Under the lock (the wait lets it go).
    /// </summary>
    static void Hold()
    {
        if (_queued <= _released)                                          // none queued, or one already let go
        {
            NewBlocker(_queued = ++_asked);
            GC.Collect(0, GCCollectionMode.Forced, blocking: true);        // the blocker is garbage: queue it
            _fullCollections = GC.CollectionCount(2);
        }
        var clock = Stopwatch.StartNew();
        while (!Holding && clock.Elapsed < ReachWait) Monitor.Wait(Gate, ReachWait - clock.Elapsed);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]                             // no reference left in this frame
    static void NewBlocker(long hold) => _ = new Blocker(hold);

    /// <summary>Its finalizer keeps the finalizer thread, and with it every finalizer queued behind, until its hold is
    /// released, no stretch has been open for <see cref="Linger"/>, a full collection runs, or <see cref="MaxHold"/>
    /// passes.</summary>
    sealed class Blocker(long hold)
    {
        ~Blocker()
        {
            lock (Gate)
            {
                if (_queued == hold) _queued = 0;
                if (_released >= hold) return;                            // let go before it was reached
                (_held, _heldSince) = (hold, Stopwatch.GetTimestamp());
                Monitor.PulseAll(Gate);
                while (_released < hold && GC.CollectionCount(2) == _fullCollections
                    && Stopwatch.GetElapsedTime(_heldSince) < MaxHold)
                {
                    var idle = _depth == 0 ? Stopwatch.GetElapsedTime(_closedAt) : TimeSpan.Zero;
                    if (idle >= Linger) break;
                    Monitor.Wait(Gate, _depth == 0 ? Linger - idle : TimeSpan.FromMilliseconds(10));
                }
                _held = 0;
            }
        }
    }
}
