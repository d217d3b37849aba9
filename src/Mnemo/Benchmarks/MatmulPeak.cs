using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>One square matmul size: n×n times n×n, 2·n³ FLOPs.</summary>
sealed record MatmulPoint(int N, double BestMs, double GflopPerSecond);

/// <summary>The machine's measured matmul peak for one dtype: the best rate over the sizes tried.</summary>
sealed record MatmulPeakResult(string Dtype, double GflopPerSecond, int BestN, MatmulPoint[] Points);

/// <summary>
/// Measures the matmul throughput libtorch reaches on this machine, in the same process and with the same thread
/// count as the kernels, so "fraction of peak" compares like with like. For each size n: warm-up, then the best of
/// <c>repeats</c> runs of <c>torch.matmul</c> on random n×n operands (best, not median: a peak is what the machine
/// can do, and a shared machine only ever makes runs slower). FLOPs = 2·n³.
/// </summary>
static class MatmulPeak
{
    public static readonly int[] DefaultSizes = [1024, 1536, 2048];

    public static MatmulPeakResult Measure(ScalarType dtype, IReadOnlyList<int> sizes, int repeats, int warmup = 1)
    {
        var points = new List<MatmulPoint>();
        foreach (int n in sizes)
        {
            using var scope = NewDisposeScope();
            var a = randn(n, n, dtype: ScalarType.Float32).to(dtype);
            var b = randn(n, n, dtype: ScalarType.Float32).to(dtype);
            var t = Timing.Measure(() => a.matmul(b), warmup, repeats);
            double flops = 2.0 * n * n * n;
            points.Add(new MatmulPoint(n, t.BestMs, flops / (t.BestMs * 1e-3) / 1e9));
        }
        var best = points.MaxBy(p => p.GflopPerSecond)!;
        return new MatmulPeakResult(DtypeName(dtype), best.GflopPerSecond, best.N, [.. points]);
    }

    public static string DtypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        ScalarType.Float64 => "fp64",
        _ => dtype.ToString(),
    };
}
