using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// A <see cref="MemoryMixer"/> whose memory is a matrix S [Dk, Dv] per head, run by one of the two matrix kernels
/// (chunk form for sequences, step form for single streamed tokens). The rules in Layers/Matrix choose the
/// kernel, the gates and the feature maps.
/// </summary>
public abstract class MatrixMemoryMixer : MemoryMixer, IMatrixMemoryLayer
{
    readonly int _chunk;
    readonly bool _negativeEigenvalues;

    /// <inheritdoc/>
    public IMatrixKernel Kernel { get; set; } = DirectMatrixKernel.Instance;

    /// <param name="c">the model's common dims</param>
    /// <param name="matrix">model.matrix</param>
    protected MatrixMemoryMixer(string name, ModelConfig c, MatrixMemoryConfig matrix, bool outputGate) : base(name, c, outputGate) =>
        (_chunk, _negativeEigenvalues) = (matrix.ChunkSize, matrix.NegativeEigenvalues);

    /// <summary>Which kernel the rule runs.</summary>
    protected abstract MatrixKernelKind Kind { get; }

    /// <summary>Log-gate g ([B, T, H] or [B, T, H, Dk]; null = no decay) and β ([B, T, H]; delta rules) from x [B, T, D].</summary>
    protected abstract (Tensor? G, Tensor? Beta) Gates(Tensor x, long position);

    /// <summary>
    /// A delta rule's writing strength from its logits [B, T, H]: σ(·) ∈ (0, 1), or 2σ(·) ∈ (0, 2) with
    /// model.matrix.negative_eigenvalues (docs/mechanisms.md#negative-eigenvalues).
    /// </summary>
    protected Tensor Beta(Tensor logits) => Beta(logits, _negativeEigenvalues);

    /// <summary><see cref="Beta(Tensor)"/> for any layer.</summary>
    public static Tensor Beta(Tensor logits, bool negativeEigenvalues) => negativeEigenvalues ? logits.sigmoid() * 2 : logits.sigmoid();

    /// <summary>The state the kernel starts from, [B, H, Dk, Dv]: what a stream's cache holds (null = zeros).</summary>
    protected virtual Tensor? InitialState(Tensor x, LayerCache? cache) => cache?.Get("state");

    protected override Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache)
    {
        var (g, beta) = Gates(x, cache?.Position ?? 0);
        var inputs = new KernelInputs(q, k, v, g, beta, InitialState(x, cache));
        var (o, state) = Kernel.Run(Kind, inputs, _chunk, streaming: cache is not null);
        if (cache is not null) cache.Set("state", state);
        return o;
    }
}
