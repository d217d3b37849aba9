using static TorchSharp.torch;

namespace Mnemo.Memory.Aaren;

/// <summary>
/// The softmax-attention state of a fixed query after a prefix (Feng et al. 2024, "Attention as an RNN", §3;
/// docs/mechanisms.md#aaren): with scores s_i = q·k_i, the running max m = max s_i, the normaliser u = Σ e^{s_i − m}
/// and the weighted sum w = Σ e^{s_i − m} v_i; the read is w / u. M, U [B, H]; W [B, H, Dv].
/// </summary>
public sealed record AarenState(Tensor M, Tensor U, Tensor W)
{
    public AarenState MoveToOuterDisposeScope() =>
        new(M.MoveToOuterDisposeScope(), U.MoveToOuterDisposeScope(), W.MoveToOuterDisposeScope());
}

/// <summary>
/// Attention with a query that does not depend on the input, read at every prefix, in three independent forms
/// (inputs in fla's layout: scores s [B, T, H], values v [B, T, H, Dv]; outputs o [B, T, H, Dv]):
/// <list type="bullet">
/// <item><see cref="Naive"/>: plain softmax over each prefix, o_t = Σ_{i≤t} softmax_{i≤t}(s) v_i, O(T²).</item>
/// <item><see cref="StepLoop"/>: the RNN, one token at a time from <see cref="AarenState"/>, O(1) state.</item>
/// <item><see cref="Scan"/>: the paper's parallel form, an inclusive prefix scan of the associative operator
/// <code>
/// (m_a, u_a, w_a) ⊕ (m_b, u_b, w_b) = (m, u_a e^{m_a − m} + u_b e^{m_b − m}, w_a e^{m_a − m} + w_b e^{m_b − m}),
/// m = max(m_a, m_b)
/// </code>
/// over the tokens' (s_i, 1, v_i), in ⌈log₂ T⌉ steps (Hillis–Steele: step d combines token t with t − d). The running
/// max keeps every exponent ≤ 0, so no range of scores overflows or underflows the normaliser (u ≥ 1).</item>
/// </list>
/// A carried state is combined into every prefix, so two calls carrying it equal one call.
/// </summary>
public static class AarenScan
{
    /// <summary>The parallel prefix scan (see the class summary), continuing from <paramref name="state"/> when given.</summary>
    public static (Tensor O, AarenState State) Scan(Tensor s, Tensor v, AarenState? state = null)
    {
        Validate(s, v);
        using var scope = NewDisposeScope();
        var m = s.transpose(1, 2);                                             // [B, H, T]
        var u = ones_like(m);
        var w = v.transpose(1, 2);                                             // [B, H, T, Dv]
        long t = m.shape[2];
        for (long d = 1; d < t; d *= 2)
        {
            // Token t combines with t − d; the first d see the identity (m = −∞, u = 0, w = 0), which leaves them as they are.
            var (mp, up, wp) = (Shifted(m, d, double.NegativeInfinity), Shifted(u, d, 0), Shifted(w, d, 0));
            (m, u, w) = Combine(mp, up, wp, m, u, w);
        }
        if (state is not null) (m, u, w) = Combine(state.M.unsqueeze(-1), state.U.unsqueeze(-1), state.W.unsqueeze(-2), m, u, w);
        var o = (w / u.unsqueeze(-1)).transpose(1, 2);                         // [B, T, H, Dv]
        var last = new AarenState(m.select(2, t - 1), u.select(2, t - 1), w.select(2, t - 1));
        return (o.MoveToOuterDisposeScope(), last.MoveToOuterDisposeScope());
    }

    /// <summary>One token: s [B, H], v [B, H, Dv]. Returns the read [B, H, Dv] and the new state.</summary>
    public static (Tensor O, AarenState State) Step(Tensor s, Tensor v, AarenState? state)
    {
        using var scope = NewDisposeScope();
        var (m, u, w) = state is null
            ? (s, ones_like(s), v)
            : Combine(state.M, state.U, state.W, s, ones_like(s), v);
        var next = new AarenState(m, u, w);
        return ((w / u.unsqueeze(-1)).MoveToOuterDisposeScope(), next.MoveToOuterDisposeScope());
    }

    /// <summary><see cref="Step"/> token by token.</summary>
    public static (Tensor O, AarenState State) StepLoop(Tensor s, Tensor v, AarenState? state = null)
    {
        Validate(s, v);
        using var scope = NewDisposeScope();
        var (ss, vs) = (s.unbind(1), v.unbind(1));
        var outputs = new Tensor[ss.Length];
        for (int i = 0; i < ss.Length; i++) (outputs[i], state) = Step(ss[i], vs[i], state);
        return (stack(outputs, 1).MoveToOuterDisposeScope(), state!.MoveToOuterDisposeScope());
    }

    /// <summary>Plain softmax attention of the fixed query over each prefix (the reference; no state).</summary>
    public static Tensor Naive(Tensor s, Tensor v)
    {
        Validate(s, v);
        using var scope = NewDisposeScope();
        long t = s.shape[1];
        var future = ones(t, t, ScalarType.Bool, s.device).triu(1);            // [T (prefix), T (token)]: token after prefix end
        var scores = s.transpose(1, 2).unsqueeze(-2).expand(-1, -1, t, -1)     // [B, H, T, T]: row = prefix, column = token
            .masked_fill(future, double.NegativeInfinity);
        var o = scores.softmax(-1).matmul(v.transpose(1, 2));                  // [B, H, T, Dv]
        return o.transpose(1, 2).MoveToOuterDisposeScope();
    }

    static (Tensor M, Tensor U, Tensor W) Combine(Tensor ma, Tensor ua, Tensor wa, Tensor mb, Tensor ub, Tensor wb)
    {
        var m = maximum(ma, mb);
        var (ea, eb) = ((ma - m).exp(), (mb - m).exp());                        // each ≤ 1, one of them = 1
        return (m, ua * ea + ub * eb, wa * ea.unsqueeze(-1) + wb * eb.unsqueeze(-1));
    }

    /// <summary>x shifted d steps later along dim 2, the first d filled with <paramref name="fill"/>.</summary>
    static Tensor Shifted(Tensor x, long d, double fill)
    {
        var shape = x.shape.ToArray();
        shape[2] = d;
        return cat([full(shape, fill, x.dtype, x.device), x.narrow(2, 0, x.shape[2] - d)], 2);
    }

    static void Validate(Tensor s, Tensor v)
    {
        if (s.dim() != 3 || v.dim() != 4 || s.shape[0] != v.shape[0] || s.shape[1] != v.shape[1] || s.shape[2] != v.shape[2])
            throw new MnemoException($"aaren: scores must be [B, T, H] and values [B, T, H, Dv] with the same B, T, H; got " +
                $"[{string.Join(", ", s.shape)}] and [{string.Join(", ", v.shape)}]");
        if (s.shape[1] == 0) throw new MnemoException("aaren: no tokens (T = 0)");
    }
}
