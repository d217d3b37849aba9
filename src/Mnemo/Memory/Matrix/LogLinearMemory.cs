using System.Numerics;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// Inputs of log-linear attention in the kernels' layout: q, k [B, T, H, Dk], v [B, T, H, Dv], the log-decay g [B, T, H],
/// the level scales λ [B, T, H, L] (one per Fenwick level, level 0 the token itself), the carried state (null: a
/// fresh stream at position 0) and the delta rule's β [B, T, H] (null: Mamba-2's rule; given: Gated DeltaNet's).
/// </summary>
public sealed record LogLinearInputs(Tensor Q, Tensor K, Tensor V, Tensor G, Tensor Levels, LogLinearState? State = null,
    Tensor? Beta = null);

/// <summary>
/// The carried state of log-linear attention: one memory per Fenwick level 1 … L − 1, S [B, H, L − 1, Dk, Dv] (a level
/// whose block is empty at this position, its bit clear, holds zeros and is ignored), and the stream's position (tokens
/// seen so far).
/// </summary>
public sealed record LogLinearState(Tensor S, long Position);

/// <summary>
/// Log-linear attention (Guo, Yang, Goel, Xing, Dao &amp; Kim 2025, arXiv 2506.04761; docs/mechanisms.md#log-linear-attention)
/// on a rule whose state follows S_t = A_t S_{t−1} + k_t v̂_tᵀ: Mamba-2's (A_t = e^{g_t}, v̂ = v; fla's
/// naive_log_linear_attn) or Gated DeltaNet's (A_t = e^{g_t}(I − β_t k_t k_tᵀ), v̂ = β v; the authors' recurrence):
/// <code>
/// y_t = Σ_{s≤t} λ_t^{(ℓ(t, s))} q_tᵀ (A_t ⋯ A_{s+1}) k_s v̂_sᵀ,     ℓ(t, s) = bit length of t XOR s   (ℓ(t, t) = 0)
/// </code>
/// The prefix [0, t) splits into Fenwick blocks, one per set bit of t, and each block has its own weight λ_t^{(ℓ)}, so
/// the model keeps O(log T) memories instead of one; every level takes the same transitions. The step form carries one
/// state per level and merges them as a Fenwick tree counts: after token t, the levels below the lowest set bit of t + 1
/// and the token fold into that bit's level. The chunk form (chunk C = 2^c) uses the mask inside a chunk (levels ≤ c) and
/// the same merges per chunk for the levels above c; a start or end that is not a multiple of C runs the step form up to
/// the next boundary. <see cref="Naive"/> weights the rule's whole token-to-token matrix.
/// </summary>
public static class LogLinearMemory
{
    /// <summary>The rule in one of the three forms; returns y [B, T, H, Dv] and the final state.</summary>
    public static (Tensor Y, LogLinearState State) Run(KernelForm form, LogLinearInputs x, int chunkSize = 64)
    {
        Validate(x);
        return form switch
        {
            KernelForm.Naive => Naive(x),
            KernelForm.Step => Steps(x),
            _ => Chunk(x, chunkSize),
        };
    }

    /// <summary>ℓ(t, s): the Fenwick level of position s in the prefix of t (0 for s = t).</summary>
    public static int Level(long t, long s) => 64 - BitOperations.LeadingZeroCount((ulong)(t ^ s));

    /// <summary>Token by token, carrying the levels.</summary>
    static (Tensor Y, LogLinearState State) Steps(LogLinearInputs x)
    {
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        var s = InitialLevels(x, dtype);
        long position = x.State?.Position ?? 0;
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            Tensor At(Tensor v) => v.select(1, t).to(dtype);
            (var y, s) = Step(At(x.Q), At(x.K), At(x.V), At(x.G), x.Beta is null ? null : At(x.Beta), At(x.Levels), s, position + t);
            outputs.Add(y);
        }
        var final = new LogLinearState(s.MoveToOuterDisposeScope(), position + x.Q.shape[1]);
        return (stack(outputs, 1).to(x.Q.dtype).MoveToOuterDisposeScope(), final);
    }

    /// <summary>
    /// Token p: q, k [B, H, Dk], v [B, H, Dv], g, β [B, H], λ [B, H, L], levels S [B, H, L − 1, Dk, Dv] holding the blocks of
    /// [0, p) carried to p − 1. Returns y [B, H, Dv] and the levels for p + 1.
    /// </summary>
    static (Tensor Y, Tensor S) Step(Tensor q, Tensor k, Tensor v, Tensor g, Tensor? beta, Tensor lambda, Tensor s, long p)
    {
        s = s * g.exp().view(g.shape[0], g.shape[1], 1, 1, 1);                                  // decay to p
        if (beta is not null)                                // the delta rule: each level loses β k (kᵀ S_j); the token writes β v
        {
            var recalled = k.unsqueeze(2).unsqueeze(-2).matmul(s);                               // kᵀ S_j  [B, H, L − 1, 1, Dv]
            s = s - (beta.unsqueeze(-1) * k).unsqueeze(2).unsqueeze(-1) * recalled;
            v = beta.unsqueeze(-1) * v;
        }
        var reads = q.unsqueeze(2).unsqueeze(-2).matmul(s).squeeze(-2);                          // q S_j  [B, H, L − 1, Dv]
        var own = (q * k).sum([-1], keepdim: true) * v;                                         // (q · k) v
        var y = lambda.select(-1, 0).unsqueeze(-1) * own + (lambda.narrow(-1, 1, s.shape[2]).unsqueeze(-1) * reads).sum([2]);
        return (y, Merge(s, k.unsqueeze(-1) * v.unsqueeze(-2), BitOperations.TrailingZeroCount((ulong)(p + 1))));
    }

    /// <summary>The levels after a block w [B, H, Dk, Dv] (a token, or a chunk's write) joins them: level z + 1 (index z)
    /// becomes w plus every level below it, which empty.</summary>
    static Tensor Merge(Tensor s, Tensor w, int z)
    {
        long levels = s.shape[2];
        var merged = (z == 0 ? w : w + s.narrow(2, 0, z).sum([2])).unsqueeze(2);
        var parts = new List<Tensor>();
        if (z > 0) parts.Add(zeros_like(s.narrow(2, 0, z)));
        parts.Add(merged);
        if (z + 1 < levels) parts.Add(s.narrow(2, z + 1, levels - z - 1));
        return cat(parts, 2);
    }

    /// <summary>The chunk form: steps up to the first multiple of C, whole aligned chunks, steps for the rest.</summary>
    static (Tensor Y, LogLinearState State) Chunk(LogLinearInputs x, int chunkSize)
    {
        using var scope = NewDisposeScope();
        long t = x.Q.shape[1], position = x.State?.Position ?? 0;
        long c = 1L << BitOperations.Log2((uint)Math.Max(1, chunkSize));                          // a power of two
        long head = Math.Min(t, (c - position % c) % c);
        long body = (t - head) / c * c;
        var pieces = new List<Tensor>();
        var state = x.State;
        LogLinearInputs Slice(long start, long length, LogLinearState? s)
        {
            Tensor At(Tensor v) => v.narrow(1, start, length);
            return new(At(x.Q), At(x.K), At(x.V), At(x.G), At(x.Levels), s, x.Beta is null ? null : At(x.Beta));
        }
        foreach (var (start, length, aligned) in new[] { (0L, head, false), (head, body, true), (head + body, t - head - body, false) })
        {
            if (length == 0) continue;
            var (y, s) = aligned ? Aligned(Slice(start, length, state), c) : Steps(Slice(start, length, state));
            pieces.Add(y);
            state = s;
        }
        return (cat(pieces, 1).MoveToOuterDisposeScope(), new LogLinearState(state!.S.MoveToOuterDisposeScope(), state.Position));
    }

    /// <summary>
    /// Whole chunks of C = 2^c tokens from a position that is a multiple of C. Per chunk, as the rule's own chunk form
    /// computes it (docs/mechanisms.md#log-linear-attention): the token-to-token matrix M inside the chunk, weighted by
    /// λ at each pair's level; the reads R of a state entering the chunk (y += R S_j), the chunk's transition P of an
    /// entering state (S_j → P S_j) and its own block Wr, which joins the levels above c. Mamba-2: M = Q ⋆ K,
    /// R = Q ⊙ e^γ, P = e^{γ_C}, Wr = (K ⊙ e^{γ_C − γ})ᵀ V. Gated DeltaNet (the WY form of <see cref="DeltaKernel"/>,
    /// 𝓛 = I + tril(βK ⋆ K, −1), W = 𝓛⁻¹ (βK ⊙ e^γ)): M = (Q ⋆ K) 𝓛⁻¹ with values βV,
    /// R = Q ⊙ e^γ − (Q ⋆ K) W, P = e^{γ_C} − (K ⊙ e^{γ_C − γ})ᵀ W, Wr = (K ⊙ e^{γ_C − γ})ᵀ 𝓛⁻¹ βV.
    /// </summary>
    static (Tensor Y, LogLinearState State) Aligned(LogLinearInputs x, long c)
    {
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], position = x.State?.Position ?? 0;
        int low = BitOperations.Log2((ulong)c);                                                 // levels 1 … low live inside a chunk
        var (Q, K, V, _) = Chunks.SplitQkv(x.Q, x.K, x.V, c);                                    // [B, H, N, C, D]
        var lambda = x.Levels.to(dtype).permute(0, 2, 1, 3).reshape(b, h, t / c, c, -1);         // [B, H, N, C, L]
        long levels = lambda.shape[^1];

        var gates = Decays.Of(x.G, c, dtype);
        var (M, R, U) = (gates.Star(Q, K), gates.Read(Q), V);                                   // Mamba-2's; U: what a chunk writes
        Tensor? erased = null;                                                 // (K ⊙ e^{γ_C − γ})ᵀ W  [B, H, N, Dk, Dk]
        if (x.Beta is not null)
        {
            var beta = Chunks.SplitScalar(x.Beta, c, dtype).unsqueeze(-1);                       // [B, H, N, C, 1]
            var E = beta * K;
            var Linv = linalg.solve_triangular(gates.Star(E, K), eye(c, dtype: dtype, device: Q.device), upper: false, left: true,
                unitriangular: true);                                                            // 𝓛⁻¹ [B, H, N, C, C]
            var W = Linv.matmul(gates.Read(E));                                                  // [B, H, N, C, Dk]
            (R, M, V) = (R - M.matmul(W), M.matmul(Linv), beta * V);
            U = Linv.matmul(V);
            erased = gates.Write(K).transpose(-1, -2).matmul(W);
        }
        var index = Levels(0, c, c, Q.device);                                                   // ℓ(i, j) inside a chunk [C, C]
        var weights = lambda.gather(-1, index.expand(b, h, t / c, c, c));                       // λ_i^{(ℓ(i, j))} [B, H, N, C, C]
        var O = (M * weights).matmul(V);                                                         // inside the chunks [B, H, N, C, Dv]

        var written = gates.Write(K).transpose(-1, -2).matmul(U);                                 // each chunk's block [B, H, N, Dk, Dv]
        var (writes, carries, reads, chunkLambda) = (written.unbind(2), gates.Carry!.unbind(2), R.unbind(2),
            lambda.narrow(-1, low + 1, levels - low - 1).unbind(2));                            // λ above level c [B, H, C, L − 1 − c]
        var erases = erased?.unbind(2);
        var s = InitialLevels(x, dtype);
        var upper = s.narrow(2, low, levels - 1 - low);                                          // the chunk-level blocks [B, H, J, Dk, Dv]
        var across = new Tensor[writes.Length];
        for (int n = 0; n < writes.Length; n++)
        {
            // J ≥ 1: the stream stays below 2^{L−1} tokens, so a whole chunk leaves at least one level above c
            // R_i S_j weighted by λ_i^{(c + j)}, summed over the levels j
            var r = reads[n].unsqueeze(2).matmul(upper);                                          // [B, H, J, C, Dv]
            across[n] = (r * chunkLambda[n].permute(0, 1, 3, 2).unsqueeze(-1)).sum([2]);         // [B, H, C, Dv]
            long chunk = position / c + n;
            var carried = upper * carries[n].unsqueeze(2);
            if (erases is not null) carried = carried - erases[n].unsqueeze(2).matmul(upper);
            upper = Merge(carried, writes[n], BitOperations.TrailingZeroCount((ulong)(chunk + 1)));
        }
        O = O + stack(across, 2);
        var final = low > 0 ? cat([zeros_like(s.narrow(2, 0, low)), upper], 2) : upper;
        return (Chunks.Merge(O, t).to(x.Q.dtype), new LogLinearState(final, position + t));
    }

    /// <summary>The carried levels in the compute type, a level whose block is empty at the position (its bit clear) taken as
    /// zero whatever it holds; or zeros for a fresh stream.</summary>
    static Tensor InitialLevels(LogLinearInputs x, ScalarType dtype)
    {
        if (x.State is not { } s)
            return zeros([x.Q.shape[0], x.Q.shape[2], x.Levels.shape[3] - 1, x.Q.shape[3], x.V.shape[3]], dtype, x.Q.device);
        var bits = Enumerable.Range(0, (int)s.S.shape[2]).Select(j => (double)((s.Position >> j) & 1)).ToArray();
        var present = tensor(bits, dtype, x.Q.device);
        return s.S.to(dtype) * present.view(1, 1, -1, 1, 1);
    }

    /// <summary>
    /// The reference, from one run of the rule's per-token reference (<see cref="NaiveMatrixMemory"/>) with columns side by
    /// side: one-hot values e_s, whose reads at t are the rule's token-to-token matrix M_ts = q_tᵀ (A_t ⋯ A_{s+1}) k_s (β_s),
    /// so y_t = Σ_s λ_t^{(ℓ(t, s))} M_ts v_s; the carried blocks j as initial states, read as λ_t^{(ℓ(t, s_j))} q_tᵀ
    /// (A_t ⋯ A_1) S_j; and per final level the values of its block's tokens alone (zero elsewhere), with the carried
    /// blocks inside it as the initial state, so that the run's final state is that level.
    /// </summary>
    public static (Tensor Y, LogLinearState State) Naive(LogLinearInputs x)
    {
        Validate(x);
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[3];
        long p0 = x.State?.Position ?? 0, end = p0 + t;
        int levels = (int)x.Levels.shape[3], blocks = levels - 1;
        var (q, k, v, g) = (x.Q.to(dtype), x.K.to(dtype), x.V.to(dtype), x.G.to(dtype));
        var carried = InitialLevels(x, dtype);                                                   // [B, H, L − 1, Dk, Dv]

        // The final level j: its block [start, start + 2^{j−1}) of the end's prefix (bit j − 1 of end set, else empty).
        var inBlock = new double[blocks * t];
        var carriedIn = new List<Tensor>();
        for (int j = 1; j < levels; j++)
        {
            var sum = zeros([b, h, dk, dv], dtype, x.Q.device);
            if (((end >> (j - 1)) & 1) == 1)
            {
                long start = BlockStart(end, j), stop = start + (1L << (j - 1));
                for (long i = Math.Max(start, p0); i < stop; i++) inBlock[(j - 1) * t + i - p0] = 1;
                for (int i = 1; i < levels; i++)
                    if (((p0 >> (i - 1)) & 1) == 1 && BlockStart(p0, i) >= start && BlockStart(p0, i) < stop)
                        sum = sum + carried.select(2, i - 1);
            }
            carriedIn.Add(sum);
        }
        var mask = tensor(inBlock, dtype, x.Q.device).view(blocks, t).transpose(0, 1).view(1, t, 1, blocks, 1);
        var blockValues = (v.unsqueeze(3) * mask).flatten(3);                                   // [B, T, H, (L − 1)·Dv]
        var oneHot = eye(t, dtype: dtype, device: x.Q.device).view(1, t, 1, t).expand(b, t, h, t);
        var values = cat([oneHot, zeros([b, t, h, blocks * dv], dtype, x.Q.device), blockValues], -1);
        Tensor Side(Tensor levelStates) => levelStates.permute(0, 1, 3, 2, 4).reshape(b, h, dk, blocks * dv);  // [B, H, Dk, (L − 1)·Dv]
        var h0 = cat([zeros([b, h, dk, t], dtype, x.Q.device), Side(carried), Side(stack(carriedIn, 2))], -1);
        var (o, last) = x.Beta is null ? NaiveMatrixMemory.GatedLinear(q, k, values, g, h0)
            : NaiveMatrixMemory.Delta(q, k, values, g, x.Beta.to(dtype), h0);

        var lambda = x.Levels.to(dtype);                                                         // [B, T, H, L]
        var level = Levels(p0, t, t, x.Q.device).view(1, t, 1, t).expand(b, t, h, t);
        var weighted = o.narrow(-1, 0, t) * lambda.gather(-1, level);                           // λ_t^{(ℓ(t, s))} M_ts [B, T, H, T]
        var y = weighted.permute(0, 2, 1, 3).matmul(v.transpose(1, 2)).transpose(1, 2);          // [B, T, H, Dv]
        var reads = o.narrow(-1, t, blocks * dv).view(b, t, h, blocks, dv);                      // q_tᵀ (A_t ⋯ A_1) S_j
        var blockLevels = new long[t * blocks];                                                  // ℓ(t, s_j), a block's start
        for (long i = 0; i < t; i++)
            for (int j = 1; j < levels; j++)
                blockLevels[i * blocks + j - 1] = ((p0 >> (j - 1)) & 1) == 1 ? Level(p0 + i, BlockStart(p0, j)) : 0;
        var at = tensor(blockLevels, ScalarType.Int64, x.Q.device).view(1, t, 1, blocks).expand(b, t, h, blocks);
        y = y + (lambda.gather(-1, at).unsqueeze(-1) * reads).sum([3]);                         // absent blocks are zero
        var final = last.narrow(-1, t + blocks * dv, blocks * dv).view(b, h, dk, blocks, dv).permute(0, 1, 3, 2, 4);
        return (y.to(x.Q.dtype).MoveToOuterDisposeScope(), new LogLinearState(final.contiguous().MoveToOuterDisposeScope(), end));
    }

    /// <summary>ℓ(from + i, from + j) for i &lt; rows, j &lt; columns, [rows, columns] int64 (0 above the diagonal, where the
    /// decay masks the weight anyway).</summary>
    static Tensor Levels(long from, long rows, long columns, Device device)
    {
        var levels = new long[rows * columns];
        for (long i = 0; i < rows; i++)
            for (long j = 0; j <= Math.Min(i, columns - 1); j++)
                levels[i * columns + j] = Level(from + i, from + j);
        return tensor(levels, ScalarType.Int64, device).view(rows, columns);
    }

    /// <summary>The first position of level j's block in the prefix of p (bit j − 1 of p set).</summary>
    static long BlockStart(long p, int j) => p - p % (1L << (j - 1)) - (1L << (j - 1));

    static void Validate(LogLinearInputs x)
    {
        MatrixKernels.Validate(x.Beta is null ? MatrixKernelKind.GatedLinear : MatrixKernelKind.Delta,
            new KernelInputs(x.Q, x.K, x.V, x.G, x.Beta), 1);
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[3];
        if (t == 0) throw new MnemoException("log-linear attention needs at least one token");
        if (x.G.dim() != 3)
            throw new MnemoException($"g must be [{b}, {t}, {h}] (one log-decay per head), got [{string.Join(", ", x.G.shape)}]");
        long levels = x.Levels.dim() == 4 ? x.Levels.shape[3] : 0;
        if (levels < 2 || !x.Levels.shape.Take(3).SequenceEqual(new[] { b, t, h }))
            throw new MnemoException($"levels must be [{b}, {t}, {h}, L] with L ≥ 2, got [{string.Join(", ", x.Levels.shape)}]");
        long position = x.State?.Position ?? 0;
        if (x.State is { } s && (position < 0 || !s.S.shape.SequenceEqual(new[] { b, h, levels - 1, dk, dv })))
            throw new MnemoException($"the carried levels must be [{b}, {h}, {levels - 1}, {dk}, {dv}] at a position ≥ 0, got " +
                $"[{string.Join(", ", s.S.shape)}] at {position}");
        if (levels < 63 && position + t >= 1L << (int)(levels - 1))
            throw new MnemoException($"{levels} levels cover a stream of fewer than {1L << (int)(levels - 1)} tokens; this one would " +
                $"reach {position + t}");
    }
}
