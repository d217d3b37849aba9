using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// A mixer whose later layers read the first layer's values (RWKV-7's value residual, docs/mechanisms.md#rwkv-7). The
/// layer stack hands <see cref="FirstValues"/> from the first such layer to the later ones within one pass and disposes
/// it after the pass; the first layer sets it, the others read it.
/// </summary>
public interface IValueResidual
{
    /// <summary>The first such layer's values v₁ [B, T, H·Dv] in the current pass (null before it ran).</summary>
    Tensor? FirstValues { get; set; }
}
