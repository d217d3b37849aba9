using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Layout helpers shared by the chunkwise kernels: fla's [B, T, H, D] in, [B, H, N, C, D] chunks inside, with
/// zero padding to a whole number of chunks. Zero k, v, β and zero log-gates make a padded token a no-op for the
/// state (nothing written, nothing decayed), so padding never changes outputs or the final state.
/// </summary>
static class Chunks
{
    /// <summary>fp64 stays fp64; everything else (fp32, bf16, fp16) computes in fp32.</summary>
    public static ScalarType ComputeType(Tensor x) => x.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>[B, T, H, D] → [B, H, N, C, D] with N = ⌈T/C⌉, zero-padded at the end.</summary>
    public static Tensor Split(Tensor x, long chunk, ScalarType dtype)
    {
        long b = x.shape[0], t = x.shape[1], h = x.shape[2], d = x.shape[3];
        long n = (t + chunk - 1) / chunk;
        var y = x.to(dtype).transpose(1, 2);                               // [B, H, T, D]
        if (n * chunk != t) y = nn.functional.pad(y, [0, 0, 0, n * chunk - t]);
        return y.reshape(b, h, n, chunk, d);
    }

    /// <summary>q, k, v [B, T, H, D] → chunks [B, H, N, C, D] in the compute type (fp64 stays fp64, else fp32).</summary>
    public static (Tensor Q, Tensor K, Tensor V, ScalarType DType) SplitQkv(Tensor q, Tensor k, Tensor v, long chunk)
    {
        var dtype = ComputeType(q);
        return (Split(q, chunk, dtype), Split(k, chunk, dtype), Split(v, chunk, dtype), dtype);
    }

    /// <summary>[B, T, H] → [B, H, N, C] (per-head scalars such as g and β), zero-padded.</summary>
    public static Tensor SplitScalar(Tensor x, long chunk, ScalarType dtype) => Split(x.unsqueeze(-1), chunk, dtype).squeeze(-1);

    /// <summary>[B, H, N, C, D] → [B, T, H, D], dropping the padding.</summary>
    public static Tensor Merge(Tensor x, long t)
    {
        long b = x.shape[0], h = x.shape[1], d = x.shape[4];
        return x.reshape(b, h, -1, d).narrow(2, 0, t).transpose(1, 2);
    }

    /// <summary>
    /// Γ_ij = exp(Σ_{j&lt;m≤i} g_m) for i ≥ j, else 0, from per-token log-gates g [..., C] → [..., C, C]. The segment sums
    /// are built by masking a repeated copy of g and summing down each column, never as γ_i − γ_j from a running
    /// cumsum: with strong decay the cumsum reaches hundreds and that difference would lose fp32 digits. They are 0
    /// (empty sums, so nothing can overflow) on and above the diagonal, and a 0/1 causal mask zeroes that part after
    /// exp: on the CPU, exp over −∞ entries takes a special-value path about 10× slower than exp over finite ones.
    /// </summary>
    public static Tensor DecayMatrix(Tensor g) => ColumnSums(g).exp() * CausalMask(g.shape[^1], g.dtype, g.device);

    /// <summary>[..., C] → [..., C(i), C(j)]: Σ_{j&lt;m≤i} g_m below the diagonal, 0 on and above it (the log of
    /// <see cref="DecayMatrix"/> below the diagonal, without a difference of running sums).</summary>
    public static Tensor ColumnSums(Tensor g)
    {
        long c = g.shape[^1];
        var repeated = g.unsqueeze(-1).expand([.. g.shape, c]);              // [..., C(i), C(j)] = g_i
        var below = repeated.masked_fill(Upper(c, -1, g.device), 0);        // keep m > j (strictly below the diagonal)
        return below.cumsum(-2);
    }

    /// <summary>[C, C] of 1 on and below the diagonal, 0 above it.</summary>
    public static Tensor CausalMask(long c, ScalarType dtype, Device device) => ones(c, c, dtype, device).tril();

    /// <summary>Exclusive suffix sums Σ_{m&gt;j} g_m along <paramref name="dim"/>, accumulated from the end so
    /// small sums near the end stay exact (no subtraction of large running totals).</summary>
    public static Tensor SuffixSums(Tensor g, long dim)
    {
        long c = g.shape[dim < 0 ? g.dim() + dim : dim];
        var inclusive = g.flip(dim).cumsum(dim).flip(dim);                  // Σ_{m≥j}
        var shifted = inclusive.narrow(dim, 1, c - 1);                       // Σ_{m≥j+1}, one shorter
        return cat([shifted, zeros_like(inclusive.narrow(dim, 0, 1))], dim);
    }

    /// <summary>
    /// The three decays a scalar log-gate per head applies around the scan, from per-token gates g [B, H, N, C]:
    /// on reads from the incoming state e^{γ_i} ([.., C, 1]), on writes to the outgoing state e^{γ_C − γ_j}
    /// ([.., C, 1]), and on the state itself e^{γ_C} ([B, H, N, 1, 1]); γ_i = Σ_{m≤i} g_m. Shared by both kernels.
    /// </summary>
    public static (Tensor Read, Tensor Write, Tensor Carry) ScalarDecays(Tensor g) =>
        (g.cumsum(-1).exp().unsqueeze(-1), SuffixSums(g, -1).exp().unsqueeze(-1), g.sum(-1).exp().unsqueeze(-1).unsqueeze(-1));

    /// <summary>Boolean [C, C], true strictly above diagonal <paramref name="offset"/> (j &gt; i + offset).</summary>
    public static Tensor Upper(long c, long offset, Device device) => ones(c, c, ScalarType.Bool, device).triu(offset + 1);

    /// <summary>
    /// The states entering the chunks (null: the zero state, which a scan starting from no h0 does not build), stacked
    /// [B, H, N, Dk, Dv] for the chunks' reads of them; null when nothing is there to read (a single chunk starting from
    /// the zero state: every training step at T ≤ C).
    /// </summary>
    public static Tensor? Entering(Tensor?[] before, Tensor q, Tensor v, ScalarType dtype)
    {
        if (before.All(s => s is null)) return null;
        var zero = before.Any(s => s is null) ? InitialState(null, q, v, dtype) : null;
        return stack(before.Select(s => s ?? zero!), 2);
    }

    /// <summary>One step of the scan over chunks: the state leaving a chunk, decay ⊙ s + written, from the state entering
    /// it (null: the zero state, which leaves just what the chunk wrote) and the chunk's decay (null: none).</summary>
    public static Tensor Advance(Tensor? s, Tensor? decay, Tensor written) =>
        s is null ? written : decay is null ? s + written : decay * s + written;

    /// <summary>Initial state [B, H, Dk, Dv]: the given one (in the compute type) or zeros.</summary>
    public static Tensor InitialState(Tensor? h0, Tensor q, Tensor v, ScalarType dtype) =>
        h0 is null ? zeros(q.shape[0], q.shape[2], q.shape[3], v.shape[3], dtype, q.device) : h0.to(dtype);
}
