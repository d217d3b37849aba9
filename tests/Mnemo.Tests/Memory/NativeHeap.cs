using System.Runtime.InteropServices;

namespace Mnemo.Tests.Memory;

/// <summary>The native heap's live bytes (glibc's mallinfo2: in use on the heap + mmapped), where glibc is the allocator.</summary>
static class NativeHeap
{
    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [DllImport("libc.so.6", EntryPoint = "mallinfo2")]
    static extern MallInfo2 MallInfo();

    public static bool Available { get; } = Probe();

    public static long LiveBytes()
    {
        var m = MallInfo();
        return (long)(m.UordBlks + m.HBlkHd);
    }

    static bool Probe()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return LiveBytes() > 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }
}
