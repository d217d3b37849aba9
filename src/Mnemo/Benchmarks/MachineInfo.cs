using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Mnemo.Benchmarks;

/// <summary>What a benchmark ran on: enough to tell two reports' machines and settings apart. Load averages are
/// Linux's 1-minute figure.</summary>
sealed record MachineInfo(
    string Cpu, int LogicalCores, int TorchThreads, bool Avx512, bool AmxBf16, bool Avx512Bf16,
    string Os, string Dotnet, string TorchSharp, string Libtorch,
    double? LoadAverageAtStart, string StartedUtc)
{
    public static MachineInfo Capture()
    {
        string cpu = "unknown";
        string flags = "";
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (cpu == "unknown" && line.StartsWith("model name", StringComparison.Ordinal))
                    cpu = line[(line.IndexOf(':') + 1)..].Trim();
                if (flags.Length == 0 && line.StartsWith("flags", StringComparison.Ordinal)) flags = line[(line.IndexOf(':') + 1)..];
                if (cpu != "unknown" && flags.Length > 0) break;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var flagSet = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        return new MachineInfo(cpu, Environment.ProcessorCount, torch.get_num_threads(),
            flagSet.Contains("avx512f"), flagSet.Contains("amx_bf16"), flagSet.Contains("avx512_bf16"),
            RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription,
            typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown", torch.__version__,
            LoadAverage(), DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
    }

    /// <summary>What this CPU offers bf16 matmuls, in one line: AMX tiles, AVX512-BF16 dot products, or neither (then
    /// libtorch converts bf16 to fp32 and back, and a bf16 matmul is slower than an fp32 one).</summary>
    public string Bf16Support => Bf16SupportOf(AmxBf16, Avx512Bf16);

    /// <summary>Whether bf16 matmuls run on bf16 instructions here (AMX or AVX512-BF16).</summary>
    public bool FastBf16 => AmxBf16 || Avx512Bf16;

    public static string Bf16SupportOf(bool amx, bool avx512Bf16) =>
        amx ? "AMX-BF16: fast bf16 matmuls (tiles)"
        : avx512Bf16 ? "AVX512-BF16, no AMX: fast bf16 dot products"
        : "none: no bf16 instructions, so bf16 matmuls are emulated and slower than fp32";

    /// <summary>The 1-minute load average (Linux), so a report shows whether other work shared the cores.</summary>
    public static double? LoadAverage()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }
}
