using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// A layer whose training forward pass also produces a loss term of its own (MoM's router balance). The layer
/// keeps the term of its latest training forward; the model takes it, weights it and adds it to the task loss.
/// </summary>
public interface IAuxiliaryLoss
{
    /// <summary>The unweighted term of the latest training forward pass, or null; the caller owns (disposes) it,
    /// and a second call returns null until the next forward.</summary>
    Tensor? TakeAuxLoss();
}
