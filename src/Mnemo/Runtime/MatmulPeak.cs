using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>One square matmul size: n×n times n×n, 2·n³ FLOPs.</summary>
sealed record MatmulPoint(int N, double BestMs, double GflopPerSecond);

/// <summary>The machine's measured matmul peak for one dtype: the best rate over the sizes tried.</summary>
sealed record MatmulPeakResult(string Dtype, double GflopPerSecond, int BestN, MatmulPoint[] Points);

/// <summary>
/// Measures the matmul throughput libtorch reaches on this machine, in the same process and with the same thread
/// count as the kernels, so "fraction of peak" compares like with like. For each size n: warm-up, then the best of
/// <c>repeats</c> runs of <c>torch.matmul</c> on random n×n operands (best, not median: a peak is what the machine
/// can do, and a shared machine only ever makes runs slower). FLOPs = 2·n³. The operands come from a generator of
/// their own, so measuring never moves the global random stream a training run draws from.
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
    /// bf16 matmul's rate over fp32's here, best of <paramref name="repeats"/> at n×n (about 0.1 s at n = 1024). The
    /// CPU's flags do not settle it: an AMD EPYC with AVX512-BF16 ran bf16 at 4.2× fp32, while an Intel Xeon whose
    /// flags also list AVX512-BF16 (no AMX exposed) ran it at 0.5× and whole bf16 training steps at 0.63–0.94×.
    /// </summary>
    public static double Bf16Speedup(int n = 1024, int repeats = 3) =>
        Measure(ScalarType.BFloat16, [n], repeats).GflopPerSecond / Measure(ScalarType.Float32, [n], repeats).GflopPerSecond;

    public static string DtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        ScalarType.Float64 => "fp64",
        _ => dtype.ToString(),
    };
}
