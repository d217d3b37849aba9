using static TorchSharp.torch;

namespace Mnemo.Memory.Mixture;

/// <summary>
/// Where each memory's tokens are: for batch row b and memory m, the times routed to m in their original order,
/// padded at the end to the longest such sub-sequence L. <see cref="Index"/> [B, M, L] holds those times followed by
/// the times not routed to m (it is the first L entries of a permutation of 0..T−1, so a row never repeats a time);
/// <see cref="Valid"/> [B, M, L] marks the real entries.
/// </summary>
public sealed record Subsequences(Tensor Index, Tensor Valid, long Length)
{
    /// <summary>The plan for routing indices [B, T, k] over <paramref name="memories"/> memories.</summary>
    public static Subsequences Plan(Tensor indices, long memories)
    {
        long b = indices.shape[0], t = indices.shape[1];
        var routed = zeros([b, t, memories], ScalarType.Bool, indices.device)
            .scatter(2, indices, ones(indices.shape, ScalarType.Bool, indices.device))
            .transpose(1, 2);                                                // [B, M, T]
        // Sorting key: routed times keep their value, the rest move behind them (t + T); all keys are distinct.
        var time = arange(t, ScalarType.Int64, indices.device);
        var order = where(routed, time, time + t).argsort(-1);               // [B, M, T]
        var counts = routed.sum(-1);                                         // [B, M]
        long length = Math.Max(1, counts.max().item<long>());                // ≥ 1 so the kernels always see a token
        var index = order.narrow(-1, 0, length);
        var valid = arange(length, ScalarType.Int64, indices.device).lt(counts.unsqueeze(-1));
        return new Subsequences(index, valid, length);
    }

    /// <summary>
    /// x [B, T, M, ...] → [B·M, L, ...]: memory m's tokens of row b in order, zero at padding. Zero k, v, β and
    /// log-gate make a padded token leave the state exactly as it was (nothing written, nothing decayed).
    /// </summary>
    public Tensor Gather(Tensor x)
    {
        long b = x.shape[0], m = x.shape[2];
        var perMemory = x.transpose(1, 2);                                   // [B, M, T, ...]
        var gathered = perMemory.gather(2, Expand(Index, perMemory.shape));  // [B, M, L, ...]
        return gathered.masked_fill(Expand(Valid, perMemory.shape).logical_not(), 0).reshape([b * m, Length, .. x.shape[3..]]);
    }

    /// <summary>
    /// y [B·M, L, ...] → [B, T, M, ...]: each entry back at its time, zero where the token did not go to the memory.
    /// </summary>
    public Tensor Scatter(Tensor y, long t)
    {
        long b = Index.shape[0], m = Index.shape[1];
        var rest = y.shape[2..];
        var perMemory = y.reshape([b, m, Length, .. rest]);
        var target = new long[] { b, m, t }.Concat(rest).ToArray();
        perMemory = perMemory.masked_fill(Expand(Valid, target).logical_not(), 0);
        // Rows of Index never repeat a time, so scatter writes each place at most once (its backward is a gather).
        return zeros(target, y.dtype, y.device).scatter(2, Expand(Index, target), perMemory).transpose(1, 2);
    }

    /// <summary>[B, M, L] → [B, M, L, ...] broadcast over the trailing dimensions of <paramref name="like"/>.</summary>
    static Tensor Expand(Tensor x, long[] like)
    {
        var view = x;
        for (int i = 3; i < like.Length; i++) view = view.unsqueeze(-1);
        return view.expand([x.shape[0], x.shape[1], x.shape[2], .. like[3..]]);
    }
}
