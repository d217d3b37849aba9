using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// The chunk form's gated terms for a log-gate per key channel (GLA; docs/mechanisms.md#gated-linear-kernel), with b the
/// chunk-local inclusive cumsum of the gates:
/// <code>P_ij = Σ_d Q_id K_jd e^{b_id − b_jd} (j ≤ i),   Q ⊙ e^{b},   K ⊙ e^{b_C − b},   e^{b_C}</code>
/// P cannot be one matmul: e^{−b} alone grows without bound. So the chunk is cut into sub-chunks of s ≤ 8 tokens (GLA's
/// secondary chunking). Between sub-chunks I &gt; J the two factors are referenced to the end of J (e^{b_i − b_ref} and
/// e^{b_ref − b_j}, each ≤ 1) and meet in a matmul; inside a sub-chunk the exponent is formed elementwise. s ≈ √C
/// balances the two costs: the rescaled queries of the blocks below the diagonal hold (C/s − 1)/2 copies of Q, the
/// diagonal blocks' exponents (s + 1)/2.
/// <para>
/// Exponents are sums of the gates they span: across sub-chunks, sums of sub-chunk totals; inside a sub-chunk,
/// differences of prefix sums of at most 8 gates, which round like the sums themselves. (A difference of chunk-long
/// running totals would not: with strong decay they reach hundreds and lose the small exponents' digits.)
/// </para>
/// </summary>
static class ChannelGateChunks
{
    /// <summary>
    /// Q, K, g [B, H, N, C, Dk] → P [B, H, N, C, C], Q ⊙ e^{b}, K ⊙ e^{b_C − b} and e^{b_C} [B, H, N, Dk, 1].
    /// </summary>
    public static (Tensor P, Tensor Qdecayed, Tensor Kdecayed, Tensor ChunkDecay) Terms(Tensor Q, Tensor K, Tensor g)
    {
        long bs = Q.shape[0], h = Q.shape[1], n = Q.shape[2], c = Q.shape[3], dk = Q.shape[4];
        long sub = Enumerable.Range(1, (int)Math.Min(8, c)).Last(d => c % d == 0);
        long m = c / sub;
        var Qs = Q.view(bs, h, n, m, sub, dk);                              // [B, H, N, M, s, Dk]
        var Ks = K.view(bs, h, n, m, sub, dk);
        var prefix = g.view(bs, h, n, m, sub, dk).cumsum(-2);               // b_i − b_{start of I}
        var totals = prefix.select(-2, sub - 1);                             // each sub-chunk's gates summed, [B, H, N, M, Dk]
        var Qhat = Qs * prefix.exp();                                        // q_i e^{b_i − b_{start of I}}
        var Khat = Ks * (totals.unsqueeze(-2) - prefix).exp();               // k_j e^{b_{end of J} − b_j}

        // Sums of whole sub-chunks' gates before I and after J (small tensors, summed exactly).
        var before = cat([zeros_like(totals.narrow(3, 0, 1)), totals.narrow(3, 0, m - 1)], 3).cumsum(3);
        var after = Chunks.SuffixSums(totals, 3);
        var Qdecayed = (Qhat * before.exp().unsqueeze(-2)).view(bs, h, n, c, dk);
        var Kdecayed = (Khat * after.exp().unsqueeze(-2)).view(bs, h, n, c, dk);
        var chunkDecay = totals.sum(3).exp().unsqueeze(-1);                  // [B, H, N, Dk, 1]
        return (Scores(Qs, Ks, prefix, totals, Qhat, Khat), Qdecayed, Kdecayed, chunkDecay);
    }

    /// <summary>P [B, H, N, C, C] from the diagonal blocks and the blocks below them.</summary>
    static Tensor Scores(Tensor Qs, Tensor Ks, Tensor prefix, Tensor totals, Tensor Qhat, Tensor Khat)
    {
        long bs = Qs.shape[0], h = Qs.shape[1], n = Qs.shape[2], m = Qs.shape[3], sub = Qs.shape[4];
        var diagonal = DiagonalBlocks(Qs, Ks, prefix);                       // [B, H, N, M, s, s]
        if (m == 1) return diagonal.view(bs, h, n, sub, sub);

        // Blocks below the diagonal, one block diagonal (δ = I − J) at a time, so that every factor is a slice of Q̂ or
        // K̂ rather than a gathered copy: q_i e^{b_i − b_ref} = Q̂_i e^{Σ_{J<L<I} total_L}, k_j e^{b_ref − b_j} = K̂_j.
        var parts = new List<Tensor> { diagonal };
        Tensor? between = null;                                              // Σ_{I−δ<L<I} total_L for I = δ … M−1
        for (long d = 1; d < m; d++)
        {
            // Σ_{I−δ<L<I} = total_{I−δ+1} + Σ_{I−δ+1<L<I}: the previous block diagonal's sums, one row on.
            if (d == 2) between = totals.narrow(3, 1, m - 2);
            else if (d > 2) between = between!.narrow(3, 1, m - d) + totals.narrow(3, 1, m - d);
            var Qref = Qhat.narrow(3, d, m - d);                             // [B, H, N, M−δ, s, Dk]
            if (between is not null) Qref = Qref * between.exp().unsqueeze(-2);
            parts.Add(Qref.matmul(Khat.narrow(3, 0, m - d).transpose(-1, -2))); // [B, H, N, M−δ, s, s]
        }
        parts.Add(zeros_like(diagonal.narrow(3, 0, 1)));

        // Block (I, J) of P: diagonal block I if I = J, entry J of block diagonal δ = I − J if I > J, zeros above.
        var blocks = cat(parts, 3).index_select(3, FromDiagonals(m, Qs.device));
        return blocks.view(bs, h, n, m, m, sub, sub)
            .permute(0, 1, 2, 3, 5, 4, 6).reshape(bs, h, n, m * sub, m * sub); // [B, H, N, (M s), (M s)]
    }

    /// <summary>
    /// Σ_d Q_id K_jd e^{b_id − b_jd} inside each sub-chunk ([.., M, s, Dk] → [.., M, s, s]), one diagonal (d = i − j) at a
    /// time: only the s(s+1)/2 entries with j ≤ i are formed, and no exponent above the diagonal (where it could
    /// overflow) exists.
    /// </summary>
    static Tensor DiagonalBlocks(Tensor Qs, Tensor Ks, Tensor prefix)
    {
        long s = Qs.shape[^2];
        var diagonals = new List<Tensor>();                                  // diagonal d: [.., M, s − d], entry j
        for (long d = 0; d < s; d++)
        {
            long len = s - d;
            var product = Qs.narrow(-2, d, len) * Ks.narrow(-2, 0, len);     // Q_{j+d} ⊙ K_j
            if (d > 0) product = product * (prefix.narrow(-2, d, len) - prefix.narrow(-2, 0, len)).exp();
            diagonals.Add(product.sum(-1));
        }
        diagonals.Add(zeros_like(diagonals[0].narrow(-1, 0, 1)));            // what the entries above the diagonal read
        var flat = cat(diagonals, -1).index_select(-1, FromDiagonals(s, Qs.device));           // [.., M, s·s]
        return flat.view([.. Qs.shape[..^2], s, s]);
    }

    /// <summary>
    /// For an n × n lower-triangular matrix stored as its diagonals d = 0 … n−1 (diagonal d holds entries j = 0 … n−d−1)
    /// concatenated and followed by one zero: where entry (i, j) sits, row-major [n·n]; entries above the diagonal read
    /// the zero.
    /// </summary>
    static Tensor FromDiagonals(long n, Device device)
    {
        var start = new long[n + 1];                                          // where diagonal d starts
        for (long d = 0; d < n; d++) start[d + 1] = start[d] + n - d;
        var entry = new long[n * n];
        for (long i = 0; i < n; i++)
            for (long j = 0; j < n; j++)
                entry[i * n + j] = j <= i ? start[i - j] + j : start[n];
        return tensor(entry, device: device);
    }
}
