using System.Globalization;

namespace Mnemo.Runtime;

/// <summary>
/// CPU time from Linux's /proc counters: the whole machine's busy time and this process's own, so a measurement can
/// tell whether other processes (or other virtual machines, through steal time) shared the cores while it ran.
/// </summary>
readonly record struct CpuTime(long MachineBusyTicks, long ProcessTicks)
{
    /// <summary>Clock ticks per second of /proc's counters (USER_HZ: 100 on Linux x86-64).</summary>
    const double TicksPerSecond = 100;

    /// <summary>The counters now; null where /proc cannot be read (not Linux).</summary>
    public static CpuTime? Read()
    {
        try
        {
            // "cpu  user nice system idle iowait irq softirq steal guest guest_nice": all but idle and iowait are busy
            // (guest time is already counted in user).
            var machine = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long busy = new[] { 1, 2, 3, 6, 7, 8 }.Sum(i => long.Parse(machine[i], CultureInfo.InvariantCulture));
            // "pid (comm) state ppid …": comm may hold spaces, so count from its closing parenthesis; utime and stime
            // are the 14th and 15th fields, the 12th and 13th after comm.
            string self = File.ReadAllText("/proc/self/stat");
            var fields = self[(self.LastIndexOf(')') + 2)..].Split(' ');
            long process = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return new CpuTime(busy, process);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException
            or InvalidOperationException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>How many cores' worth of CPU other processes used between two readings <paramref name="seconds"/>
    /// apart (to within a tick, 10 ms, of each counter).</summary>
    public static double OthersCores(CpuTime before, CpuTime after, double seconds) =>
        (after.MachineBusyTicks - before.MachineBusyTicks - (after.ProcessTicks - before.ProcessTicks)) / TicksPerSecond / seconds;
}
