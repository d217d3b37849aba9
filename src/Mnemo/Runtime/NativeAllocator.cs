using System.Runtime.InteropServices;

namespace Mnemo.Runtime;

/// <summary>
/// The native allocator, tuned for tensors (Linux). A tensor workload allocates and frees megabytes every op, and by
/// default each big allocation is fresh memory from the OS, paid for in page faults; on the 2-core EPYC VM measured a
/// fault costs ~20 µs per 4 KB page, so a 16 MB elementwise op took 10–20× its warm time and the deep kernels spent a
/// quarter of their time in the fault handler. Two settings, both leaving peak memory as it is:
/// <list type="bullet">
/// <item>libtorch's transparent huge pages (THP_MEM_ALLOC_ENABLE=1), only where asked for (`bench kernels`): tensors
///   of 2 MB and more are 2 MB-aligned and advised as huge pages, 512× fewer faults for fresh memory, which the deep
///   rules' gigabyte-sized per-token forms at long T need. Elsewhere they are off: with the heap reused they fragment
///   it, and whole training steps ran up to 1.7× slower with them (docs/architecture.md#the-native-allocator).</item>
/// <item>glibc: every allocation comes from the heap (no mmap), and freed heap is kept for reuse instead of returned,
///   where glibc's default adapts its mmap threshold from 128 KB, trims the heap behind every free, and serves
///   anything over 32 MB (its highest threshold) with a fresh mmap that is unmapped on free. A chunked kernel at
///   T = 16k has temporaries of 64 MB and more, so each call paid their page faults again: with mmap off, chunked
///   Gated DeltaNet forward+backward at B = H = 4, D = 64 went from 1,685 to 1,134 ms at T = 16k and 415 to 305 ms at
///   4k (docs/architecture.md#the-native-allocator). The cost: the heap keeps its high-water mark until the process
///   ends. Allocations still fall back to mmap where the heap cannot grow.</item>
/// </list>
/// Explicit settings win: THP is left alone when THP_MEM_ALLOC_ENABLE is set, glibc when any MALLOC_* tuning variable
/// or GLIBC_TUNABLES is.
/// </summary>
static class NativeAllocator
{
    const int TrimThreshold = -1, MmapThreshold = -3, MmapMax = -4;           // mallopt's M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX

    /// <summary>Whether glibc's settings were changed in this process.</summary>
    public static bool GlibcTuned { get; private set; }

    static bool _done;

    [DllImport("libc.so.6", EntryPoint = "mallopt")]
    static extern int Mallopt(int parameter, int value);

    [DllImport("libc.so.6", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libc.so.6", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    /// <summary>This process's resident memory in bytes (Linux: /proc/self/statm), or null where unknown.</summary>
    public static long? ResidentBytes()
    {
        try
        {
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>
    /// Hands the heap's free pages back to the OS (glibc's malloc_trim). The settings above keep them for reuse, which
    /// is right for a training step that needs the same temporaries again; a long stream of pieces fragments the heap
    /// instead (docs/architecture.md#the-native-allocator), so it calls this when its resident memory has grown.
    /// Returns whether anything was done.
    /// </summary>
    public static bool ReleaseFreePages()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            MallocTrim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;                                                    // not glibc
        }
    }

    /// <summary>Whether libtorch allocates its large tensors as huge pages in this process.</summary>
    public static bool HugePages { get; private set; }

    /// <summary>
    /// Applies both settings once; call before libtorch allocates (it reads THP_MEM_ALLOC_ENABLE once).
    /// <paramref name="hugePages"/>: on only for kernels at long T whose temporaries run to gigabytes (`bench kernels`);
    /// off for training steps and streams, where the huge pages' 2 MB-aligned blocks fragment the reused heap.
    /// </summary>
    public static void Tune(bool hugePages = false)
    {
        if (_done || !OperatingSystem.IsLinux()) return;
        _done = true;
        try
        {
            // libtorch reads the process environment, which .NET's Environment.SetEnvironmentVariable does not change.
            SetEnv("THP_MEM_ALLOC_ENABLE", hugePages ? "1" : "0", overwrite: 0);
            HugePages = Environment.GetEnvironmentVariable("THP_MEM_ALLOC_ENABLE") is not { } set
                ? hugePages
                : set.Trim() == "1";
            string[] explicitSettings =
                ["GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"];
            if (explicitSettings.Any(v => Environment.GetEnvironmentVariable(v) is not null)) return;
            // Setting the threshold also stops glibc's adaptation; with M_MMAP_MAX = 0 it no longer matters which size it is.
            GlibcTuned = Mallopt(MmapThreshold, 32 << 20) == 1 & Mallopt(TrimThreshold, int.MaxValue) == 1
                & Mallopt(MmapMax, 0) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: its allocator has its own policy.
        }
    }
}
