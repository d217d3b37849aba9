using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// How a matrix-memory layer runs its kernel. Layers run <see cref="DirectMatrixKernel"/>, the kernels as they are;
/// this is the one seam through which an experiment runs a variant of them on a built model (the state-collapse
/// mitigations, docs/mechanisms.md#state-collapse-mitigations), so the layers know nothing of experiments.
/// </summary>
public interface IMatrixKernel
{
    /// <summary>
    /// The read o [B, T, H, Dv] and the final state, of a whole sequence (<paramref name="streaming"/> false) or of a
    /// streamed piece continuing from x.H0 (<paramref name="streaming"/> true).
    /// </summary>
    (Tensor O, Tensor State) Run(MatrixKernelKind kind, KernelInputs x, int chunkSize, bool streaming);
}

/// <summary>The kernels as they are: the chunk form for a sequence, <see cref="MatrixKernels.Continue"/> for a streamed piece.</summary>
public sealed class DirectMatrixKernel : IMatrixKernel
{
    public static DirectMatrixKernel Instance { get; } = new();

    DirectMatrixKernel() { }

    public (Tensor O, Tensor State) Run(MatrixKernelKind kind, KernelInputs x, int chunkSize, bool streaming)
    {
        var clock = KernelClock.Begin();                                     // bench train's breakdown; a no-op otherwise
        x = x with
        {
            Q = clock.In(x.Q)!,
            K = clock.In(x.K)!,
            V = clock.In(x.V)!,
            G = clock.In(x.G),
            Beta = clock.In(x.Beta),
            Erase = clock.In(x.Erase),
            Transition = clock.In(x.Transition)
        };
        var (o, state) = streaming ? MatrixKernels.Continue(kind, x, chunkSize) : MatrixKernels.Run(kind, KernelForm.Chunk, x, chunkSize);
        return (clock.Out(o), state);
    }
}

/// <summary>A layer whose memory is a matrix state run by one of the two kernels: Mamba-2 and the matrix-memory mixers.</summary>
public interface IMatrixMemoryLayer
{
    /// <summary>The kernel the next forward runs: <see cref="DirectMatrixKernel.Instance"/> unless an experiment set a variant.</summary>
    IMatrixKernel Kernel { get; set; }

    /// <summary>Whether the layer's memory is one state run through <see cref="Kernel"/>; false for a layer built on one of
    /// these that keeps its memory otherwise (log-linear Mamba-2's levels), which the mitigations then leave alone.</summary>
    bool RunsKernel => true;
}
