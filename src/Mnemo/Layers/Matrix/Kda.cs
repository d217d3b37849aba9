using Mnemo.Memory.Matrix;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Kimi Delta Attention (Kimi Team 2025, arXiv 2510.26692; docs/mechanisms.md#kimi-delta-attention): the gated delta
/// rule with a decay per key channel, S_t = (I − β_t k_t k_tᵀ) Diag(exp g_t) S_{t−1} + β_t k_t v_tᵀ, where
/// g_t = −exp(A_log) ⊙ softplus(f_proj x_t + dt_bias) (A_log one per head, dt_bias one per key channel, f_proj low-rank
/// d_model → head_v_dim → key width), β_t = σ(b_proj x_t), q and k L2-normalised and q scaled by dk^{−1/2}. The read is
/// normalised per head and gated by sigmoid(g_proj x) (g_proj low-rank, its second matrix with a bias). Names follow
/// fla's KimiDeltaAttention.
/// </summary>
public class Kda : MatrixMemoryMixer
{
    // private protected, not private: TorchSharp registers a module's fields by reflection, which does not see a base
    // class's private fields, and GDN-2 derives from this class.
    private protected readonly Sequential f_proj;
    /// <summary>β's logits: one per head here, one per key channel in GDN-2 (its erase gate).</summary>
    private protected readonly Projection b_proj;
    private protected readonly Parameter A_log, dt_bias;
    private protected new readonly Sequential g_proj;                  // not the mixers' g_proj (off here): a low-rank one, as fla names it

    // KDA's output gate is its own (sigmoid of a low-rank g_proj), so the mixers' silu(g_proj x) is off whatever
    // model.output_gate says.
    public Kda(ModelConfig c, MatrixMemoryConfig matrix) : this(nameof(Kda), c, matrix, c.NumHeads) => RegisterComponents();

    /// <param name="betaWidth">b_proj's width: H (one β per head) or H·Dk (GDN-2's erase gate per key channel)</param>
    /// <remarks>Registers nothing: the concrete class registers its components once they all exist.</remarks>
    protected Kda(string name, ModelConfig c, MatrixMemoryConfig matrix, int betaWidth)
        : base(name, c with { OutputGate = false }, matrix, outputGate: false)
    {
        int keys = c.NumHeads * c.KeyHeadDim, values = c.NumHeads * c.ValueHeadDim;
        f_proj = nn.Sequential(new Projection(c.DModel, c.ValueHeadDim, hasBias: false),
            new Projection(c.ValueHeadDim, keys, hasBias: false));
        b_proj = new Projection(c.DModel, betaWidth, hasBias: false);
        A_log = MambaGate.Initial(c.NumHeads, matrix.DtMin, matrix.DtMax).ALog;          // log A, A ~ U(1, 16) per head
        dt_bias = MambaGate.Initial(keys, matrix.DtMin, matrix.DtMax).DtBias;            // one per key channel
        g_proj = nn.Sequential(new Projection(c.DModel, c.ValueHeadDim, hasBias: false),
            new Projection(c.ValueHeadDim, values, hasBias: true));
    }

    protected override MatrixKernelKind Kind => MatrixKernelKind.Delta;

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => UnitNormFeatures(q, k);

    protected override (Tensor? G, Tensor? Beta) Gates(Tensor x, long position) => (LogDecay(x), Beta(b_proj.forward(x)));

    /// <summary>g_t = −exp(A_log) ⊙ softplus(f_proj x_t + dt_bias), [B, T, H, Dk]: the log-decay per key channel.</summary>
    protected Tensor LogDecay(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        var pre = (f_proj.forward(x) + dt_bias).view(b, t, Heads, KeyDim);                  // [B, T, H, Dk]
        return -A_log.exp().view(Heads, 1) * nn.functional.softplus(pre);
    }

    protected override Tensor GateOutput(Tensor y, Tensor x) =>
        y * g_proj.forward(x).sigmoid().view(x.shape[0], x.shape[1], Heads, ValueDim);       // RMSNorm(o) ⊙ σ(g_proj x)
}
