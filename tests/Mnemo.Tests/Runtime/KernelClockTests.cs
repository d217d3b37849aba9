using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using Mnemo.Tests.Models;
using static TorchSharp.torch;

namespace Mnemo.Tests.Runtime;

/// <summary>The kernel clock of `bench train`: its marks change no number, and it sees every layer's kernel.</summary>
[Collection(TorchCollection.Name)]
public class KernelClockTests
{
    [Theory]
    [InlineData(MixerKind.GatedDeltaNet)]
    [InlineData(MixerKind.Mamba2)]
    [InlineData(MixerKind.Attention)]
    [InlineData(MixerKind.Titans)]
    public void Timing_the_kernels_leaves_outputs_and_gradients_unchanged(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Build(TinyModels.Config(mixer));
        var x = TinyModels.Tokens(2, 19);
        Tensor[] Gradients()
        {
            model.zero_grad();
            var logits = model.forward(x);
            (logits * logits).mean().backward();
            return [logits.detach().clone(), .. model.parameters().Select(p => p.grad!.clone())];
        }
        var plain = Gradients();
        Assert.Equal((0.0, 0.0), KernelClock.Take());                       // off: nothing recorded
        KernelClock.Enabled = true;
        try
        {
            var timed = Gradients();
            for (int i = 0; i < plain.Length; i++) Assert.True(Equivalence.RelativeRms(timed[i], plain[i]) == 0, $"{mixer}: tensor {i}");
            var (forward, backward) = KernelClock.Take();
            Assert.True(forward > 0 && backward > 0, $"{mixer}: kernel forward {forward} ms, backward {backward} ms");
            Assert.Equal((0.0, 0.0), KernelClock.Take());                   // taken once
        }
        finally
        {
            KernelClock.Enabled = false;
        }
    }
}
