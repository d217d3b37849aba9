using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// A mixer that reads a prompt prefix non-causally (JRT-RNN's prefix linear attention). Without a prefix it is causal
/// like every other mixer; the model hands it the prefix lengths when it has them (LanguageModel.ScoredLogits, a
/// stream's first piece).
/// </summary>
public interface IPrefixMixer
{
    /// <summary>
    /// x [B, T, D] → [B, T, D], where row b's first prefix[b] positions ([B] int64, each in [0, T]) form the prefix. With a
    /// cache, the prefix must be the stream's first piece (cache.Position 0): what is read later stays causal.
    /// </summary>
    Tensor Forward(Tensor x, LayerCache? cache, Tensor prefix);
}
