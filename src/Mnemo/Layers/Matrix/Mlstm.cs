using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// The mLSTM (Beck et al. 2024, xLSTM, arXiv 2405.04517; docs/mechanisms.md#mlstm) in the memory mixers' shell, with
/// xLSTM 7B's gates: per head an input gate ĩ = 15 tanh(igate x / 15) and a forget gate f̃ = 15 tanh(fgate x / 15)
/// (pre-activations soft-capped at ±15), the stabilised exponential-gated memory of <see cref="MlstmMemory"/> (q scaled
/// by dk^{−1/2}, k as projected), a per-head RMSNorm of the read and the output gate σ(ogate x), then o_proj. Biases start
/// as xLSTM's: the forget gate's at linspace(3, 6) over the heads (f ≈ 0.95–0.998), the input gate's N(0, 0.1²).
/// </summary>
public sealed class Mlstm : MemoryMixer, IMatrixMemoryLayer
{
    const double GateCap = 15;
    readonly Projection igate, fgate, ogate;
    readonly int _chunk;

    /// <inheritdoc/>
    public IMatrixKernel Kernel { get; set; } = DirectMatrixKernel.Instance;

    // The mLSTM's output gate is its own (σ(ogate x) after the norm), so the mixers' silu(g_proj x) is off whatever
    // model.output_gate says.
    public Mlstm(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(Mlstm), c with { OutputGate = false }, outputGate: false)
    {
        _chunk = matrix.ChunkSize;
        igate = new Projection(c.DModel, c.NumHeads, hasBias: true);
        fgate = new Projection(c.DModel, c.NumHeads, hasBias: true);
        ogate = new Projection(c.DModel, c.NumHeads * c.ValueHeadDim, hasBias: false);
        using (no_grad())
        {
            fgate.Bias!.copy_(linspace(3, 6, c.NumHeads));
            igate.Bias!.normal_(0, 0.1);                                      // the global generator, seeded with the model
        }
        RegisterComponents();
    }

    protected override Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache)
    {
        var (i, f) = (SoftCap(igate.forward(x)), SoftCap(fgate.forward(x)));                  // ĩ, f̃ [B, T, H]
        var state = cache?.Get("c") is { } c ? new MlstmState(c, cache.Get("n")!, cache.Get("m")!) : null;
        var (h, s) = MlstmMemory.Run(new MlstmInputs(q, k, v, i, f, state),
            inputs => Kernel.Run(MatrixKernelKind.GatedLinear, inputs, _chunk, streaming: cache is not null), _chunk);
        if (cache is not null)
        {
            cache.Set("c", s.C);
            cache.Set("n", s.N);
            cache.Set("m", s.M);
        }
        return h;
    }

    static Tensor SoftCap(Tensor x) => (x / GateCap).tanh() * GateCap;

    protected override Tensor GateOutput(Tensor y, Tensor x) =>
        y * ogate.forward(x).sigmoid().view(x.shape[0], x.shape[1], Heads, ValueDim);         // RMSNorm(h) ⊙ σ(ogate x)
}
