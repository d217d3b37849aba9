using static TorchSharp.torch;

namespace Mnemo.Memory.Landmark;

/// <summary>
/// Landmark attention's grouped softmax (Mohtashami &amp; Jaggi 2023; docs/mechanisms.md#landmark-attention). The sequence
/// is cut into blocks of ℓ tokens, each followed by its landmark token, so a block spans m = ℓ + 1 positions and the
/// landmark sits at in-block index ℓ. A query i in block b_i attends, in one softmax (the outer group), to the tokens of
/// its own block up to itself and to the landmarks of the blocks before it; the weight a landmark gets is shared among
/// its block's tokens by a second softmax over them (the inner group). Landmark values are never read:
/// w_ij = p_out(j) for j in the current block, p_out(landmark of g) · p_in,g(j) for j in an earlier block g.
/// <para>Layout: q [B, H, T, Dh] at absolute positions past … past + T − 1; k, v [B, H, past + T, Dh] (every position
/// from 0); positions count landmarks.</para>
/// </summary>
public static class GroupedSoftmax
{
    /// <summary>A finite stand-in for −∞ in masked scores: exp underflows to exactly 0, and a row with no member gives
    /// finite (unused) values instead of NaN, whose gradient would poison the rows that are used.</summary>
    const double Excluded = -1e30;

    /// <summary>Whether absolute position p is a landmark (the last position of its block of ℓ + 1).</summary>
    public static bool IsLandmark(long p, int block) => p % (block + 1) == block;

    /// <summary>
    /// Every earlier block's tokens reached through its landmark: the training form (all blocks retrieved), with an
    /// explicit [T, past + T] weight matrix. Returns o [B, H, T, Dh] and the weights [B, H, T, past + T].
    /// </summary>
    public static (Tensor O, Tensor Weights) Dense(Tensor q, Tensor k, Tensor v, int block, long past)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], n = k.shape[2], m = block + 1, blocks = (n + m - 1) / m, width = blocks * m;
        var s = q.matmul(k.transpose(-1, -2)) * Math.Pow(q.shape[^1], -0.5);             // [B, H, T, N]
        s = width == n ? s : nn.functional.pad(s, [0, width - n], value: Excluded);      // [B, H, T, nb·m]: whole blocks
        var qi = arange(past, past + t, device: q.device).unsqueeze(1);                  // [T, 1]
        var kj = arange(width, device: q.device).unsqueeze(0);                           // [1, nb·m]
        Tensor bi = qi.div(m, rounding_mode: RoundingMode.floor), bj = kj.div(m, rounding_mode: RoundingMode.floor);
        var landmark = kj.remainder(m).eq(block);
        var token = landmark.logical_not().logical_and(kj.lt(n));                        // a real, non-landmark key
        var current = bj.eq(bi).logical_and(token).logical_and(kj.le(qi));               // [T, nb·m]
        var earlier = bj.lt(bi);
        var outerGroup = current.logical_or(earlier.logical_and(landmark));
        var outer = s.masked_fill(outerGroup.logical_not(), Excluded).softmax(-1);      // [B, H, T, nb·m]
        var earlierToken = earlier.logical_and(token).view(t, blocks, m);                // [T, nb, m]
        var inner = s.view(b, h, t, blocks, m).masked_fill(earlierToken.logical_not(), Excluded).softmax(-1);
        var landmarkWeight = outer.view(b, h, t, blocks, m).select(-1, block).unsqueeze(-1);   // [B, H, T, nb, 1]
        var reached = (inner * landmarkWeight).masked_fill(earlierToken.logical_not(), 0).view(b, h, t, width);
        var weights = (outer.masked_fill(current.logical_not(), 0) + reached).narrow(-1, 0, n);  // [B, H, T, N]
        return (weights.matmul(v).MoveToOuterDisposeScope(), weights.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The inference form: each query reads its own block and only the <paramref name="topK"/> earlier blocks whose
    /// landmarks score highest for it (per head), gathered from the cache: o [B, H, T, Dh]. With topK at least the number
    /// of earlier blocks it equals <see cref="Dense"/>. Queries are taken <paramref name="queryChunk"/> at a time, so a
    /// long prompt's gathered blocks stay small. The complete blocks are read through views of k and v (no copy of the
    /// cache): a decode step costs the landmark scores (one per block) and k + 1 blocks, not the whole context.
    /// <para>With <paramref name="rotate"/> (x [..., Dh], positions broadcasting over x's leading dimensions → x rotated;
    /// rotary positions), q and k arrive unrotated, blocks are chosen by position-free scores, and the chosen blocks are
    /// placed, in their order in the sequence, at consecutive positions just before the query's own block, as the paper
    /// does: the query sees distances of at most (topK + 1)·(ℓ + 1), whatever the context. With every earlier block
    /// chosen these are the true positions.</para>
    /// </summary>
    public static Tensor Retrieve(Tensor q, Tensor k, Tensor v, int block, long past, int topK, int queryChunk = 64,
        Func<Tensor, Tensor, Tensor>? rotate = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        using var scope = NewDisposeScope();
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], d = q.shape[3], n = k.shape[2], m = block + 1;
        long complete = n / m, chosen = Math.Min(topK, complete);                         // blocks whose landmark exists
        double scale = Math.Pow(d, -0.5);
        Tensor Complete(Tensor x) => x.narrow(2, 0, complete * m).view(b, h, complete, m, d);   // [B, H, nc, m, Dh]
        Tensor kb = Complete(k), vb = Complete(v);
        var landmarks = kb.select(3, block);                                              // [B, H, nc, Dh]
        var j = arange(m, device: q.device);
        var pieces = new List<Tensor>();
        for (long c0 = 0; c0 < t; c0 += queryChunk)
        {
            using var chunkScope = NewDisposeScope();                                    // one chunk's gathers at a time
            long tc = Math.Min(queryChunk, t - c0);
            var qc = q.narrow(2, c0, tc);                                                 // [B, H, tc, Dh]
            var qi = arange(past + c0, past + c0 + tc, device: q.device);                 // [tc] absolute positions
            var bi = qi.div(m, rounding_mode: RoundingMode.floor);
            // The query's own block: its tokens up to the query (the landmark excluded), gathered row by row.
            var rows = (bi.unsqueeze(1) * m + j).clamp_max(n - 1).view(-1);                // [tc·m]
            var kc = k.index_select(2, rows).view(b, h, tc, m, d);                        // [B, H, tc, m, Dh]
            var vc = v.index_select(2, rows).view(b, h, tc, m, d);
            var own = j.unsqueeze(0).le((qi - bi * m).unsqueeze(1)).logical_and(j.ne(block));   // [tc, m]
            Tensor? top = null, valid = null, ks = null, vs = null;
            if (chosen > 0)
            {
                // Retrieval: landmark scores of the blocks before each query's own, the best `chosen` of them.
                var available = arange(complete, device: q.device).unsqueeze(0).lt(bi.unsqueeze(1));   // [tc, nc]
                var scores = qc.matmul(landmarks.transpose(-1, -2)) * scale;             // [B, H, tc, nc]
                (top, var index) = scores.masked_fill(available.logical_not(), double.NegativeInfinity).topk((int)chosen, dim: -1);
                valid = top.isfinite();                                                   // fewer earlier blocks than chosen
                if (rotate is not null)
                {
                    // In sequence order, the missing ones last.
                    var order = where(valid, index, full_like(index, complete)).sort(-1).Values;
                    (index, valid) = (order.clamp_max(complete - 1), order.lt(complete));
                }
                Tensor Gather(Tensor x) => x.unsqueeze(2).expand(b, h, tc, complete, m, d)
                    .gather(3, index.view(b, h, tc, chosen, 1, 1).expand(b, h, tc, chosen, m, d));  // [B, H, tc, k, m, Dh]
                (ks, vs) = (Gather(kb), Gather(vb));
            }
            if (rotate is not null)
            {
                // Slot s of the chosen blocks at positions s·m …, the own block after the a chosen ones, the query in it.
                var a = (valid?.sum(-1) ?? zeros(b, h, tc, ScalarType.Int64, q.device)) * m;   // [B, H, tc]
                qc = rotate(qc, a + (qi - bi * m));
                kc = rotate(kc, a.unsqueeze(-1) + j);
                if (ks is not null)
                {
                    ks = rotate(ks, (arange(chosen, device: q.device) * m).unsqueeze(1) + j);   // [k, m]
                    top = ks.select(-2, block).matmul(qc.unsqueeze(-1)).squeeze(-1) * scale; // the landmarks where they now are
                }
            }
            var ownScores = (kc.matmul(qc.unsqueeze(-1)).squeeze(-1) * scale).masked_fill(own.logical_not(), Excluded);
            if (ks is null)
            {
                pieces.Add(ownScores.softmax(-1).masked_fill(own.logical_not(), 0).unsqueeze(-2).matmul(vc).squeeze(-2)
                    .MoveToOuterDisposeScope());
                continue;
            }
            var innerScores = ks.view(b, h, tc, chosen * m, d).matmul(qc.unsqueeze(-1)).view(b, h, tc, chosen, m) * scale;
            var inner = innerScores.masked_fill(j.eq(block), Excluded).softmax(-1);       // [B, H, tc, k, m]
            var outer = cat([top!.masked_fill(valid!.logical_not(), Excluded), ownScores], -1).softmax(-1);  // [B, H, tc, k + m]
            var landmarkWeight = outer.narrow(-1, 0, chosen).masked_fill(valid.logical_not(), 0);           // [B, H, tc, k]
            var ownWeight = outer.narrow(-1, chosen, m).masked_fill(own.logical_not(), 0);
            var fromBlocks = inner.unsqueeze(-2).matmul(vs!).squeeze(-2);                 // [B, H, tc, k, Dh]
            pieces.Add(((landmarkWeight.unsqueeze(-1) * fromBlocks).sum(3) + ownWeight.unsqueeze(-2).matmul(vc).squeeze(-2))
                .MoveToOuterDisposeScope());
        }
        return cat(pieces, 2).MoveToOuterDisposeScope();
    }
}
