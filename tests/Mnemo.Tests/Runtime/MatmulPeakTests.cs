using Mnemo.Runtime;
using TorchSharp;

namespace Mnemo.Tests.Runtime;

[Collection(TorchCollection.Name)]                                      // seeds and reads the global generator
public class MatmulPeakTests
{
    [Fact]
    public void Measuring_bf16_speed_leaves_the_global_random_stream_alone()
    {
        // A bf16 training run measures the speed-up before its first step; its draws must be those of any other run.
        torch.random.manual_seed(5);
        float expected = torch.rand(1).item<float>();
        torch.random.manual_seed(5);
        double speedup = MatmulPeak.Bf16Speedup(n: 64, repeats: 1, maxSeconds: 0.5);
        Assert.True(speedup > 0 && double.IsFinite(speedup), $"speed-up {speedup}");
        Assert.Equal(expected, torch.rand(1).item<float>());
    }

    [Fact]
    public void The_better_of_two_peak_measurements_is_taken_size_by_size()
    {
        var before = new MatmulPeakResult("fp32", 300, 1536, [new(1024, 8, 250), new(1536, 20, 300), new(2048, 60, 280)]);
        var after = new MatmulPeakResult("fp32", 310, 2048, [new(1024, 6, 290), new(1536, 25, 240), new(2048, 55, 310)]);
        var best = before.Best(after);
        Assert.Equal([290.0, 300.0, 310.0], best.Points.Select(p => p.GflopPerSecond));
        Assert.Equal((310.0, 2048), (best.GflopPerSecond, best.BestN));
        Assert.Equal("fp32", best.Dtype);
    }

    [Fact]
    public void Cpu_time_counts_this_process_apart_from_the_others()
    {
        if (!OperatingSystem.IsLinux()) return;
        var before = CpuTime.Read();
        Assert.NotNull(before);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double sink = 0;
        while (clock.ElapsedMilliseconds < 300) sink += Math.Sqrt(sink + 1);         // 0.3 s of this process's own work
        var after = CpuTime.Read();
        Assert.NotNull(after);
        Assert.True(sink > 0);
        long own = after.Value.ProcessTicks - before.Value.ProcessTicks;
        Assert.True(own >= 20, $"this process's ticks over 0.3 s of work: {own}");              // ≥ 0.2 s at 100 ticks/s
        Assert.True(after.Value.MachineBusyTicks - before.Value.MachineBusyTicks >= own - 2, "the machine's busy time includes ours");
        double others = CpuTime.OthersCores(before.Value, after.Value, clock.Elapsed.TotalSeconds);
        Assert.True(double.IsFinite(others) && others <= Environment.ProcessorCount, $"others {others}");
    }
}
