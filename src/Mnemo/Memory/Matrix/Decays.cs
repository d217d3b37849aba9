using static Mnemo.Runtime.MixedPrecision;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// What a log-gate layout does inside the chunk forms, for both kernels (docs/mechanisms.md#the-generalized-delta-rule): with γ the
/// chunk-local cumulative log-gate, the decayed product X ⋆ Y_ij = Σ_d X_id Y_jd e^{γ_id − γ_jd} (j ≤ i, diagonal
/// included, zero above it), the reads of the state entering a chunk X ⊙ e^γ, the writes to the state leaving it
/// Y ⊙ e^{γ_C − γ}, and the chunk's own decay e^{γ_C} (null without a gate; [B, H, N, 1, 1] per head, [B, H, N, Dk, 1] per
/// key channel). Operands are chunks [B, H, N, C, D].
/// </summary>
abstract class Decays
{
    /// <summary>The decays of g: null (no gate), [B, T, H] (one per head) or [B, T, H, Dk] (one per key channel).</summary>
    public static Decays Of(Tensor? g, long chunk, ScalarType dtype) =>
        g is null ? new None(chunk, dtype) : g.dim() == 3 ? new PerHead(Chunks.SplitScalar(g, chunk, dtype))
            : new PerChannel(Chunks.Split(g, chunk, dtype));

    public abstract Tensor Star(Tensor X, Tensor Y);

    public abstract Tensor Read(Tensor X);

    public abstract Tensor Write(Tensor Y);

    public abstract Tensor? Carry { get; }

    readonly Dictionary<Tensor, Tensor> _raised = new(ReferenceEqualityComparer.Instance);

    /// <summary>
    /// X ⋆ Y with X's row t decayed to token t − 1 only, Σ_d X_td Y_jd e^{γ_{t−1,d} − γ_jd} for j &lt; t (zero on and above
    /// the diagonal): a read of the state before token t's decay. It is the inclusive product of X raised one row (row
    /// t − 1 holding X_t), lowered back, so no e^{−g} is ever formed and every layout stays exact.
    /// </summary>
    public Tensor StarBefore(Tensor X, Tensor Y)
    {
        var P = Star(Raised(X), Y);
        long c = P.shape[^2];
        return cat([zeros_like(P.narrow(-2, 0, 1)), P.narrow(-2, 0, c - 1)], -2);
    }

    /// <summary>X_t ⊙ e^{γ_{t−1}} (γ_{−1} = 0): the entering state read before token t's decay.</summary>
    public Tensor ReadBefore(Tensor X)
    {
        var R = Read(Raised(X));
        long c = R.shape[^2];
        return cat([X.narrow(-2, 0, 1), R.narrow(-2, 0, c - 1)], -2);
    }

    /// <summary>X moved up one row within each chunk, a zero row last (kept per operand, so that its products are shared).</summary>
    Tensor Raised(Tensor X)
    {
        if (_raised.TryGetValue(X, out var up)) return up;
        long c = X.shape[^2];
        return _raised[X] = cat([X.narrow(-2, 1, c - 1), zeros_like(X.narrow(-2, 0, 1))], -2);
    }

    /// <summary>No gate: the causal mask, nothing decays.</summary>
    sealed class None(long chunk, ScalarType dtype) : Decays
    {
        Tensor? _mask;

        public override Tensor Star(Tensor X, Tensor Y) =>
            MatMul(X, Y.transpose(-1, -2)) * (_mask ??= Chunks.CausalMask(chunk, dtype, X.device));

        public override Tensor Read(Tensor X) => X;

        public override Tensor Write(Tensor Y) => Y;

        public override Tensor? Carry => null;
    }

    /// <summary>One gate per head, gc [B, H, N, C]: X ⋆ Y = (X Yᵀ) ⊙ Γ with Γ <see cref="Chunks.DecayMatrix"/>.</summary>
    sealed class PerHead(Tensor gc) : Decays
    {
        readonly Tensor _gamma = Chunks.DecayMatrix(gc);                         // [B, H, N, C, C]
        readonly (Tensor Read, Tensor Write, Tensor Carry) _decays = Chunks.ScalarDecays(gc);

        public override Tensor Star(Tensor X, Tensor Y) => MatMul(X, Y.transpose(-1, -2)) * _gamma;

        public override Tensor Read(Tensor X) => X * _decays.Read;

        public override Tensor Write(Tensor Y) => Y * _decays.Write;

        public override Tensor? Carry => _decays.Carry;
    }

    /// <summary>
    /// One gate per key channel, gk [B, H, N, C, Dk]: <see cref="ChannelGateChunks.Terms"/>, which forms X ⋆ Y together with
    /// X's read and Y's write; those are kept (by operand) so that asking for them again costs nothing.
    /// </summary>
    sealed class PerChannel(Tensor gk) : Decays
    {
        readonly Dictionary<Tensor, Tensor> _reads = new(ReferenceEqualityComparer.Instance);
        readonly Dictionary<Tensor, Tensor> _writes = new(ReferenceEqualityComparer.Instance);
        Tensor? _carry;

        public override Tensor Star(Tensor X, Tensor Y)
        {
            var (P, Xread, Ywrite, carry) = ChannelGateChunks.Terms(X, Y, gk);
            _reads.TryAdd(X, Xread);
            _writes.TryAdd(Y, Ywrite);
            _carry ??= carry;
            return P;
        }

        // Asked for without a product (the decays alone): e^γ, and e^{γ_C − γ} from sums that start at the chunk's end.
        public override Tensor Read(Tensor X) => _reads.TryGetValue(X, out var r) ? r : X * gk.cumsum(-2).exp();

        public override Tensor Write(Tensor Y) => _writes.TryGetValue(Y, out var w) ? w : Y * Chunks.SuffixSums(gk, -2).exp();

        public override Tensor? Carry => _carry ??= gk.sum(-2).exp().unsqueeze(-1);      // [B, H, N, Dk, 1]
    }
}
