using System.Globalization;
using System.Runtime.InteropServices;
using Mnemo.Runtime;
using TorchSharp;

namespace Mnemo.Benchmarks;

/// <summary>What a benchmark ran on: enough to tell two reports' machines and settings apart. Load averages are
/// Linux's 1-minute figure; HugePages is whether libtorch allocated huge pages (docs/architecture.md#the-native-allocator);
/// Blas what MKL's kernels were chosen by (docs/architecture.md#mkl-on-amd); FusedChunk whether the fused chunk kernels ran
/// (docs/mechanisms.md#fused-chunk-kernels); Threads which threads run Mnemo's own kernels
/// (docs/architecture.md#two-thread-pools).</summary>
sealed record MachineInfo(
    string Cpu, int LogicalCores, int TorchThreads, bool Avx512, bool AmxBf16, bool Avx512Bf16, bool HugePages, string Blas,
    string FusedChunk, string Threads, string Os, string Dotnet, string TorchSharp, string Libtorch,
    double? LoadAverageAtStart, string StartedUtc)
{
    public static MachineInfo Capture()
    {
        var cpu = CpuFeatures.Read();
        return new MachineInfo(cpu.Model, Environment.ProcessorCount, torch.get_num_threads(), cpu.Avx512, cpu.AmxBf16, cpu.Avx512Bf16,
            NativeAllocator.HugePages, MklDispatch.Status, Memory.Matrix.FusedChunk.Status, CoreTeam.Status,
            RuntimeInformation.OSDescription,
            RuntimeInformation.FrameworkDescription,
            typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown", torch.__version__,
            LoadAverage(), DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
    }

    /// <summary><see cref="CpuFeatures.Bf16Support"/>.</summary>
    public string Bf16Support => CpuFeatures.Bf16SupportOf(AmxBf16, Avx512Bf16);

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
