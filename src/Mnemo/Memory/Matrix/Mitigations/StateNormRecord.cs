using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix.Mitigations;

/// <summary>The latest recorded ‖S_t‖_F [B, T, H] of one mixer, owned outside every dispose scope (the previous
/// record is disposed when a new one arrives; forwards that record nothing leave it as it was).</summary>
public sealed class StateNormRecord
{
    public Tensor? Value { get; private set; }

    public void Keep(Tensor? norms)
    {
        if (norms is null) return;
        Value?.Dispose();
        Value = norms.detach().DetachFromDisposeScope();
    }
}
