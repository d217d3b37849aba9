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
        double speedup = MatmulPeak.Bf16Speedup(n: 64, repeats: 1);
        Assert.True(speedup > 0 && double.IsFinite(speedup), $"speed-up {speedup}");
        Assert.Equal(expected, torch.rand(1).item<float>());
    }
}
