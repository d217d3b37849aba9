using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>One square matmul size: n×n times n×n, 2·n³ FLOPs.</summary>
sealed record MatmulPoint(int N, double BestMs, double GflopPerSecond);

/// <summary>The machine's measured matmul peak for one dtype: the best rate over the sizes tried.</summary>
sealed record MatmulPeakResult(string Dtype, double GflopPerSecond, int BestN, MatmulPoint[] Points)
{
    /// <summary>The better of this and another measurement of the same sizes, size by size.</summary>
    public MatmulPeakResult Best(MatmulPeakResult other)
    {
        var points = Points.Zip(other.Points, (a, b) => a.GflopPerSecond >= b.GflopPerSecond ? a : b).ToArray();
        var best = points.MaxBy(p => p.GflopPerSecond)!;
        return this with { GflopPerSecond = best.GflopPerSecond, BestN = best.N, Points = points };
    }
}

/// <summary>
/// Measures the matmul throughput libtorch reaches on this machine, in the same process and with the same thread
/// count as the kernels, so "fraction of peak" compares like with like. For each size n: warm-up, then the best of
/// <c>repeats</c> runs of <c>torch.matmul</c> on random n×n operands (best, not median: a peak is what the machine
/// can do, and a shared machine only ever makes runs slower). FLOPs = 2·n³. The operands come from a generator of
/// their own, so measuring never moves the global random stream a training run draws from. The benchmarks measure it
/// before and after their timings and keep the better (<see cref="MatmulPeakResult.Best"/>): a process's first seconds
/// may share the cores with whatever started it (`dotnet run` still working: 184–239 GFLOP/s there, 401–414 measured
/// by the same binary started on its own, 2026-12-07).
/// </summary>
static class MatmulPeak
{
    public static readonly int[] DefaultSizes = [1024, 1536, 2048];

    public static MatmulPeakResult Measure(ScalarType dtype, IReadOnlyList<int> sizes, int repeats, int warmup = 1)
    {
        var points = new List<MatmulPoint>();
        using var generator = new Generator(0);
        foreach (int n in sizes)
        {
            using var scope = NewDisposeScope();
            var a = randn(n, n, dtype: ScalarType.Float32, generator: generator).to(dtype);
            var b = randn(n, n, dtype: ScalarType.Float32, generator: generator).to(dtype);
            var t = Timing.Measure(() => a.matmul(b), warmup, repeats);
            double flops = 2.0 * n * n * n;
            points.Add(new MatmulPoint(n, t.BestMs, flops / (t.BestMs * 1e-3) / 1e9));
        }
        var best = points.MaxBy(p => p.GflopPerSecond)!;
        return new MatmulPeakResult(DtypeName(dtype), best.GflopPerSecond, best.N, [.. points]);
    }

    /// <summary>
    /// bf16 matmul's rate over fp32's here at n×n: rounds that alternate the dtypes, each the best of
    /// <paramref name="repeats"/> (about 0.1 s a round at n = 1024), keeping each dtype's best, until a round after the
    /// first ran while other processes used less than <see cref="QuietCores"/> of a core (<see cref="CpuTime"/>), or
    /// for at most <paramref name="maxSeconds"/>. Two fixed rounds were not enough: the measurement comes in a process's
    /// first seconds, and under `dotnet run` the SDK kept a core busy for about 2 s after it started the program
    /// (fp32 at ~225 GFLOP/s there, ~400 after), so the ratio read 1.9–5.6 where the binary started on its own reads
    /// 1.8. The CPU's flags do not settle it: an AMD EPYC with AVX512-BF16 ran bf16 at 1.8–1.9× fp32, while an Intel Xeon
    /// whose flags also list AVX512-BF16 (no AMX exposed) ran it at 0.5× and whole bf16 training steps at 0.63–0.94×.
    /// </summary>
    public static double Bf16Speedup(int n = 1024, int repeats = 3, double maxSeconds = 4)
    {
        double bf16 = 0, fp32 = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int round = 0; ; round++)
        {
            var (before, start) = (CpuTime.Read(), clock.Elapsed.TotalSeconds);
            bf16 = Math.Max(bf16, Measure(ScalarType.BFloat16, [n], repeats).GflopPerSecond);
            fp32 = Math.Max(fp32, Measure(ScalarType.Float32, [n], repeats).GflopPerSecond);
            var after = CpuTime.Read();
            bool quiet = before is null || after is null
                || CpuTime.OthersCores(before.Value, after.Value, clock.Elapsed.TotalSeconds - start) < QuietCores;
            if ((round >= 1 && quiet) || clock.Elapsed.TotalSeconds >= maxSeconds) return bf16 / fp32;
        }
    }

    /// <summary>Other processes' CPU use under which a round of <see cref="Bf16Speedup"/> counts as undisturbed.</summary>
    public const double QuietCores = 0.25;

    public static string DtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        ScalarType.Float64 => "fp64",
        _ => dtype.ToString(),
    };
}
