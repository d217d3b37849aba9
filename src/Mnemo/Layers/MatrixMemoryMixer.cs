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
    /// <param name="householder">whether the rule takes model.matrix.householder_steps (the delta rules that do)</param>
    protected MatrixMemoryMixer(string name, ModelConfig c, MatrixMemoryConfig matrix, bool outputGate, bool householder = false)
        : base(name, c, outputGate, householder ? matrix.HouseholderSteps : 1) =>
        (_chunk, _negativeEigenvalues) = (matrix.ChunkSize, matrix.NegativeEigenvalues);

    /// <summary>model.matrix.chunk_size: the chunk form's chunk.</summary>
    protected int ChunkSize => _chunk;

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

    /// <summary>
    /// A rule that writes other than β k and β v (GDN-2, Comba; docs/mechanisms.md#the-generalized-delta-rule) turns the
    /// kernel's inputs into its own here, from the layer input x [B, T, D]: an erase vector, the written value, a
    /// transition vector, the order of the erase read and the decay. The inputs as they are by default.
    /// </summary>
    protected virtual KernelInputs Rule(KernelInputs inputs, Tensor x) => inputs;

    /// <summary>The state the kernel starts from, [B, H, Dk, Dv]: what a stream's cache holds (null = zeros).</summary>
    protected virtual Tensor? InitialState(Tensor x, LayerCache? cache) => cache?.Get("state");

    protected override Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache)
    {
        var (g, beta) = Gates(x, cache?.Position ?? 0);
        if (Writes > 1) (q, g, beta) = Substeps(q, g, beta!);
        var inputs = Rule(new KernelInputs(q, k, v, g, beta, InitialState(x, cache)), x);
        var (o, state) = Kernel.Run(Kind, inputs, _chunk, streaming: cache is not null);
        if (cache is not null) cache.Set("state", state);
        if (Writes == 1) return o;
        long b = o.shape[0], t = o.shape[1] / Writes;
        return o.view(b, t, Writes, Heads, o.shape[3]).select(2, Writes - 1);                // read after a token's last write
    }

    /// <summary>
    /// DeltaProduct (docs/mechanisms.md#deltaproduct): each token is W = <see cref="MemoryMixer.Writes"/> steps of the
    /// kernel, one per key and value it wrote (k, v already [B, T·W, H, D]). The token's decay acts on its first step, its
    /// query reads after its last: q [B, T, H, Dk] → [B, T·W, H, Dk] with zeros before each token's last step,
    /// g [B, T, H(, Dk)] → [B, T·W, ...] with zeros after its first, β [B, T, W·H] → [B, T·W, H].
    /// </summary>
    (Tensor Q, Tensor? G, Tensor Beta) Substeps(Tensor q, Tensor? g, Tensor beta)
    {
        long b = q.shape[0], t = q.shape[1];
        var (zq, zg) = (zeros_like(q), g is null ? null : zeros_like(g));                  // one zero tensor each, stacked W − 1 times
        var qs = stack([.. Enumerable.Repeat(zq, Writes - 1), q], 2).flatten(1, 2);                // [B, T·W, H, Dk]
        var gs = g is null ? null : stack([g, .. Enumerable.Repeat(zg!, Writes - 1)], 2).flatten(1, 2);
        return (qs, gs, beta.view(b, t * Writes, Heads));
    }
}
