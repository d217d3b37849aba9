using static TorchSharp.torch;

namespace Mnemo.Memory.Mixture;

/// <summary>A token's route: its k memories [B, T, k] (int64), their weights [B, T, k] and the router's
/// probabilities over all memories [B, T, M] (what the load-balancing loss needs).</summary>
public sealed record Route(Tensor Indices, Tensor Weights, Tensor Probabilities);

/// <summary>
/// MoM's router (docs/mechanisms.md#mixture-of-memories): r_t = softmax(logits_t), the top-k memories I_t, weights
/// w_t = r_t[I_t] / Σ r_t[I_t]; and a switch-style load-balancing loss on the probabilities.
/// </summary>
public static class Router
{
    /// <summary>Routes logits [B, T, M] to the top <paramref name="k"/> memories (ties: the lower index first).</summary>
    public static Route Select(Tensor logits, long k)
    {
        var probabilities = nn.functional.softmax(logits, -1);
        var (top, indices) = probabilities.topk((int)k, dim: -1);
        return new Route(indices, top / top.sum(-1, keepdim: true), probabilities);
    }

    /// <summary>
    /// Switch-Transformer load balancing over the N = B·T tokens of a call:
    /// <code>L_aux = M · Σ_m f_m · P_m,   f_m = #{(t, j) : I_tj = m} / (N·k),   P_m = (1/N) Σ_t r_tm</code>
    /// f (the share of the N·k routing slots memory m receives) is a count and carries no gradient; P does, so the
    /// gradient lowers the probability of memories that are over-used. L_aux = 1 whenever P is uniform, and for
    /// routing that follows the probabilities (f = P) L_aux = M Σ P_m² ≥ 1 with equality only when balanced.
    /// (Mixtral/fla sum f over the k slots without dividing by k, which is k times this.)
    /// </summary>
    public static Tensor BalanceLoss(Route route)
    {
        using var scope = NewDisposeScope();
        long m = route.Probabilities.shape[^1];
        var slots = nn.functional.one_hot(route.Indices.reshape(-1), m).to(route.Probabilities.dtype).mean([0]);  // f [M]
        var mean = route.Probabilities.reshape(-1, m).mean([0]);                                                // P [M]
        return (m * (slots * mean).sum()).MoveToOuterDisposeScope();
    }
}
