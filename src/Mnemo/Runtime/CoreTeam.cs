using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Mnemo.Runtime;

/// <summary>
/// Runs Mnemo's own parallel kernels (the fused chunk pass, the fused norms) on libtorch's worker threads, the GNU
/// OpenMP team its operations run on, instead of on .NET's thread pool. With two pools on the same cores, libtorch's idle
/// workers spin for milliseconds after every operation (GNU OpenMP's default), and a .NET worker starting in that time
/// shares its core with a thread doing nothing: on a 2-core EPYC the fused chunk kernel of a Gated DeltaNet training step
/// took 12.4–14.0 ms on the thread pool and 8.5–9.3 ms once those workers did not spin (docs/architecture.md#two-thread-pools).
/// On the team, the spinning worker is the one that picks the work up.
/// <para>
/// The kernel enters the team through libgomp's own entry point for a parallel region (<c>GOMP_parallel</c>, what a
/// compiler emits for <c>#pragma omp parallel</c>) with a .NET function as the region's body; each thread takes items
/// until none are left. Where libgomp is not loaded (not Linux, another libtorch build), the thread pool runs them.
/// </para>
/// </summary>
static unsafe class CoreTeam
{
    static readonly object Gate = new();
    static bool _resolved;
    static delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void> _parallel;

    /// <summary>One line for `mnemo info` and benchmark reports: which threads run Mnemo's own kernels, and why.</summary>
    public static string Status
    {
        get
        {
            Resolve();
            return _status;
        }
    }

    static string _status = "not checked";

    /// <summary>Whether Mnemo's kernels run on libtorch's OpenMP team in this process.</summary>
    public static bool OnOpenMp
    {
        get
        {
            Resolve();
            return _parallel != null;
        }
    }

    /// <summary>Runs body(i) for every i in [0, count) on at most libtorch's thread count of threads.</summary>
    public static void For(int count, Action<int> body) =>
        For<object?>(count, static () => null, (_, i) => body(i), static _ => { });

    /// <summary>
    /// Runs body(local, i) for every i in [0, count) on at most libtorch's thread count of threads; each thread makes its
    /// own local with <paramref name="init"/> before its first item and hands it to <paramref name="final"/> after its
    /// last. Which thread runs which item varies, so a body's result must not depend on it. The first exception a body
    /// throws stops the items not yet started and is rethrown here.
    /// </summary>
    public static void For<TLocal>(int count, Func<TLocal> init, Action<TLocal, int> body, Action<TLocal> final)
    {
        if (count <= 0) return;
        int threads = Math.Min(torch.get_num_threads(), count);
        if (threads <= 1)
        {
            var local = init();
            try { for (int i = 0; i < count; i++) body(local, i); }
            finally { final(local); }
            return;
        }
        Resolve();
        if (_parallel == null)
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, init,
                (i, _, local) => { body(local, i); return local; }, final);
            return;
        }
        var job = new Job<TLocal>(count, init, body, final);
        var handle = GCHandle.Alloc(job);
        try
        {
            _parallel(&Enter, GCHandle.ToIntPtr(handle), (uint)threads, 0);
        }
        finally
        {
            handle.Free();
        }
        job.Error?.Throw();
    }

    /// <summary>The body of the OpenMP region: every thread of the team runs it with the job's handle.</summary>
    [UnmanagedCallersOnly]
    static void Enter(nint data) => ((IJob)GCHandle.FromIntPtr(data).Target!).Work();

    interface IJob
    {
        void Work();
    }

    sealed class Job<TLocal>(int count, Func<TLocal> init, Action<TLocal, int> body, Action<TLocal> final) : IJob
    {
        int _next;
        ExceptionDispatchInfo? _error;

        public ExceptionDispatchInfo? Error => _error;

        /// <remarks>No exception may leave: it would cross into native code and end the process.</remarks>
        public void Work()
        {
            try
            {
                var local = init();
                try
                {
                    for (int i; (i = Interlocked.Increment(ref _next) - 1) < count;) body(local, i);
                }
                finally
                {
                    final(local);
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);
                Volatile.Write(ref _next, count);                              // the other threads start nothing more
            }
        }
    }

    /// <summary>Finds libgomp among the loaded libraries (libtorch loads it) and its parallel-region entry point, once.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    static void Resolve()
    {
        if (Volatile.Read(ref _resolved)) return;
        lock (Gate)
        {
            if (_resolved) return;
            try
            {
                TorchRuntime.Initialise();                                     // libtorch, and with it libgomp, loaded
                string? path = OperatingSystem.IsLinux()
                    ? MklDispatch.MappedPath(file => file.StartsWith("libgomp", StringComparison.Ordinal))
                    : null;
                if (path is null) _status = ".NET's thread pool (libtorch's OpenMP runtime, libgomp, is not loaded)";
                else
                {
                    var library = NativeLibrary.Load(path);
                    _parallel = (delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void>)
                        NativeLibrary.GetExport(library, "GOMP_parallel");
                    _status = $"libtorch's OpenMP threads ({Path.GetFileName(path)})";
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException
                or EntryPointNotFoundException or BadImageFormatException)
            {
                _status = $".NET's thread pool (libgomp could not be used: {e.Message})";
            }
            Volatile.Write(ref _resolved, true);
        }
    }
}
