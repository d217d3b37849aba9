using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// Everything a deep memory carries between tokens, per layer l of the memory MLP (all [B, H, in, out]):
/// the raw weights M_t, the raw weights M_{t'} at the start of the current chunk (every gradient in a chunk is
/// taken there, so the chunk size is part of the model), the momentum S_t (learners with momentum), how many tokens
/// of the current chunk have been seen, and for an Omega window of c tokens the last c − 1 keys [B, H, c−1, Dk],
/// values [B, H, c−1, Dv], window gates γ and thresholds δ [B, H, c−1] (zeros before the sequence starts: γ = 0
/// makes them count for nothing). O(1) in the sequence length.
/// When the tokens seen so far end exactly at a chunk boundary, Offset is 0 and ChunkStart is the current weights
/// (the start of the next chunk, whose gradients will be taken there), so w{l}_chunk_start = w{l}.
/// </summary>
public sealed record DeepState(Tensor[] Weights, Tensor[] ChunkStart, Tensor[]? Momentum, long Offset,
    Tensor? WindowK = null, Tensor? WindowV = null, Tensor? WindowGamma = null, Tensor? WindowDelta = null)
{
    /// <summary>The state before the first token: weights w0 (each [H, in, out] or [B, H, in, out]) broadcast over
    /// the batch, zero momentum, an empty window (thresholds only for objectives that read them, as every form's
    /// final state has them).</summary>
    public static DeepState Initial(DeepMemoryRule rule, IReadOnlyList<Tensor> w0, long batch, long keyDim, long valueDim, ScalarType dtype)
    {
        var weights = w0.Select(w => (w.dim() == 3 ? w.unsqueeze(0).expand(batch, -1, -1, -1) : w).to(dtype)).ToArray();
        var momentum = rule.Learner.HasMomentum ? weights.Select(w => zeros_like(w)).ToArray() : null;
        long heads = weights[0].shape[1], lookback = rule.Window - 1;
        var device = weights[0].device;
        return lookback == 0
            ? new DeepState(weights, weights, momentum, 0)
            : new DeepState(weights, weights, momentum, 0,
                zeros(batch, heads, lookback, keyDim, dtype, device), zeros(batch, heads, lookback, valueDim, dtype, device),
                zeros(batch, heads, lookback, dtype, device),
                rule.Objective.NeedsDelta ? zeros(batch, heads, lookback, dtype, device) : null);
    }

    /// <summary>Every tensor of the state (weights, chunk-start weights, momentum) flattened and concatenated
    /// [B, H, n], for comparisons and the kernel command's single state output.</summary>
    public Tensor Flatten()
    {
        var parts = Weights.Concat(ChunkStart).Concat(Momentum ?? []).Select(w => w.flatten(2));
        return cat(parts.ToArray(), 2);
    }

    /// <summary>Detached copies owned by the caller's outer scope (for carrying across dispose scopes).</summary>
    public DeepState MoveToOuterDisposeScope()
    {
        static Tensor M(Tensor t) => t.MoveToOuterDisposeScope();
        return new DeepState(Weights.Select(M).ToArray(), ChunkStart.Select(M).ToArray(), Momentum?.Select(M).ToArray(), Offset,
            WindowK is null ? null : M(WindowK), WindowV is null ? null : M(WindowV),
            WindowGamma is null ? null : M(WindowGamma), WindowDelta is null ? null : M(WindowDelta));
    }

    /// <summary>All tensors, named (for streaming caches).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> Tensors()
    {
        for (int l = 0; l < Weights.Length; l++)
        {
            yield return ($"w{l}", Weights[l]);
            yield return ($"w{l}_chunk_start", ChunkStart[l]);
            if (Momentum is not null) yield return ($"s{l}", Momentum[l]);
        }
        if (WindowK is not null) yield return ("window_k", WindowK);
        if (WindowV is not null) yield return ("window_v", WindowV);
        if (WindowGamma is not null) yield return ("window_gamma", WindowGamma);
        if (WindowDelta is not null) yield return ("window_delta", WindowDelta);
    }
}
