using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Training;

/// <summary>
/// A copy in memory of a module's parameters and buffers, to put back after an experiment changed them (each arm of a
/// study that fine-tunes the same pretrained model starts from the same weights, without a round trip through a file).
/// </summary>
public sealed class WeightSnapshot : IDisposable
{
    readonly Dictionary<string, Tensor> _saved;

    public WeightSnapshot(nn.Module module)
    {
        using var noGrad = no_grad();
        _saved = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>Copies the saved values back into <paramref name="module"/>'s tensors in place (optimizers built on them stay
    /// valid); the module must be the one the snapshot was taken of, or one of the same shape.</summary>
    public void Restore(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (name, target) in module.state_dict())
        {
            if (!_saved.TryGetValue(name, out var value))
                throw new MnemoException($"the weight snapshot has no \"{name}\": it was taken of a different model");
            target.copy_(value);
        }
    }

    public void Dispose()
    {
        foreach (var t in _saved.Values) t.Dispose();
        _saved.Clear();
    }
}
