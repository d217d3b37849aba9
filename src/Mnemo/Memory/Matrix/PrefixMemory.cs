using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>
/// JRT-RNN's prefix linear attention (Arora et al. 2024, "Just read twice"; docs/mechanisms.md#prefix-linear-attention):
/// an encoder reads the first P_b tokens of row b non-causally into S^e = Σ_{j&lt;P_b} φ(k^e_j)ᵀ v^e_j, and every
/// position reads S^e beside its causal linear-attention state:
/// o_i = φ(q_i) (S^e + Σ_{j≤i} φ(k_j)ᵀ v_j).
/// So the recurrent form is linear attention started from S^e, and the state after the prefix is one matrix of the
/// same size. Layout as the kernels: q, k, k^e [B, T, H, Dk] (features applied), v, v^e [B, T, H, Dv], prefix
/// lengths [B] int64 (0 = no prefix, T = the whole row).
/// </summary>
public static class PrefixMemory
{
    /// <summary>[B, T] true at the positions j &lt; P_b of each row's prefix.</summary>
    public static Tensor Mask(Tensor prefix, long t) =>
        arange(t, device: prefix.device).unsqueeze(0) < prefix.unsqueeze(1);

    /// <summary>S^e = Σ_{j&lt;P_b} k^e_jᵀ v^e_j per row and head: [B, H, Dk, Dv].</summary>
    public static Tensor EncoderState(Tensor ke, Tensor ve, Tensor prefix)
    {
        using var scope = NewDisposeScope();
        var m = Mask(prefix, ke.shape[1]).to(ke.dtype).unsqueeze(-1).unsqueeze(-1);     // [B, T, 1, 1]
        var keys = (ke * m).permute(0, 2, 3, 1);                                        // [B, H, Dk, T]
        return keys.matmul(ve.permute(0, 2, 1, 3)).MoveToOuterDisposeScope();           // [B, H, Dk, T]·[B, H, T, Dv]
    }

    /// <summary>
    /// The reference form, as attention with an explicit [T, T] score matrix per row and head: causal scores
    /// q_i·k_j (j ≤ i) on the decoder's values plus encoder scores q_i·k^e_j (j &lt; P_b, any i) on the encoder's.
    /// Returns o [B, T, H, Dv] and the state after the row, S^e + Σ_j k_jᵀ v_j [B, H, Dk, Dv].
    /// </summary>
    public static (Tensor O, Tensor State) Naive(Tensor q, Tensor k, Tensor v, Tensor ke, Tensor ve, Tensor prefix)
    {
        using var scope = NewDisposeScope();
        long t = q.shape[1];
        Tensor Heads(Tensor x) => x.permute(0, 2, 1, 3);                                // [B, T, H, D] → [B, H, T, D]
        var causal = ones(t, t, dtype: @bool, device: q.device).tril();                 // j ≤ i
        var prefixColumns = Mask(prefix, t).unsqueeze(1).unsqueeze(2);                  // [B, 1, 1, T]: j < P_b
        var decoder = Heads(q).matmul(Heads(k).transpose(-1, -2)).masked_fill(causal.logical_not(), 0);   // [B, H, T, T]
        var encoder = Heads(q).matmul(Heads(ke).transpose(-1, -2)).masked_fill(prefixColumns.logical_not(), 0);
        var o = decoder.matmul(Heads(v)) + encoder.matmul(Heads(ve));                   // [B, H, T, Dv]
        var state = EncoderState(ke, ve, prefix) + Heads(k).transpose(-1, -2).matmul(Heads(v));
        return (Heads(o).MoveToOuterDisposeScope(), state.MoveToOuterDisposeScope());
    }
}
