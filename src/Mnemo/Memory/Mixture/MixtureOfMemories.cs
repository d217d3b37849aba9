using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Memory.Mixture;

/// <summary>
/// Inputs of a mixture-of-memories call (docs/mechanisms.md#mixture-of-memories). One query per token, read from every memory it is
/// routed to; keys, values and gates per token and memory; routing per token.
/// <list type="bullet">
/// <item>q [B, T, H, Dk]; k [B, T, M, H, Dk]; v [B, T, M, H, Dv]</item>
/// <item>g (log-gates) null | [B, T, M, H] | [B, T, M, H, Dk] (per channel: gated linear only); beta [B, T, M, H] (delta)</item>
/// <item>indices [B, T, k] int64: the k distinct memories of each token; weights [B, T, k]: their mixing weights</item>
/// <item>h0 [B, M, H, Dk, Dv]: the memories' states; Shared: an optional memory every token writes to, read with
/// its own Q (the mixer passes the same q), its output added</item>
/// </list>
/// A token's k, v, β, g for a memory it is not routed to are never used.
/// </summary>
public sealed record MixtureInputs(
    Tensor Q, Tensor K, Tensor V, Tensor? G, Tensor? Beta, Tensor Indices, Tensor Weights, Tensor? H0 = null, KernelInputs? Shared = null)
{
    public long Memories => K.shape[2];
}

/// <summary>o [B, T, H, Dv]; the memories' final states [B, M, H, Dk, Dv]; the shared memory's [B, H, Dk, Dv] if any.</summary>
public sealed record MixtureResult(Tensor O, Tensor States, Tensor? SharedState);

/// <summary>
/// Mixture of memories (Du et al. 2025): memory m runs its update rule only over its own ordered sub-sequence of
/// routed tokens {t : m ∈ I_t} — no write and no decay at other tokens — and o_t = Σ_{m∈I_t} w_tm · q_t S^m_t
/// (+ q_t S^shared_t). Works with either matrix kernel. Three forms that agree:
/// <list type="bullet">
/// <item>Chunk: gather each memory's sub-sequence per batch row (zero-padded to the longest), run the matrix
/// kernel's chunk form on all B·M sub-sequences at once, scatter the outputs back and mix them by the weights.</item>
/// <item>Step: per token, pick the k routed states, step them, write them back (streaming: O(k) per token).</item>
/// <item>Naive: <see cref="NaiveMixture"/>, a per-token loop over the selected memories.</item>
/// </list>
/// </summary>
public static class MixtureOfMemories
{
    public static MixtureResult Run(MatrixKernelKind kind, KernelForm form, MixtureInputs x, int chunkSize = 64)
    {
        Validate(kind, x, chunkSize);
        return form switch
        {
            KernelForm.Naive => NaiveMixture.Run(kind, x),
            KernelForm.Step => StepLoop(kind, x),
            KernelForm.Chunk => Chunk(kind, x, chunkSize),
            _ => throw new ArgumentOutOfRangeException(nameof(form)),
        };
    }

    /// <summary>Streaming: continues from x.H0 (and the shared memory's H0); one token steps, a longer piece chunks.</summary>
    public static MixtureResult Continue(MatrixKernelKind kind, MixtureInputs x, int chunkSize) =>
        Run(kind, x.Q.shape[1] == 1 ? KernelForm.Step : KernelForm.Chunk, x, chunkSize);

    /// <summary>Gather → matrix kernel chunk form over the B·M sub-sequences → scatter × weights.</summary>
    static MixtureResult Chunk(MatrixKernelKind kind, MixtureInputs x, int chunkSize)
    {
        using var scope = NewDisposeScope();
        long b = x.Q.shape[0], t = x.Q.shape[1], m = x.Memories;
        var plan = Subsequences.Plan(x.Indices, m);
        var q = x.Q.unsqueeze(2).expand([b, t, m, .. x.Q.shape[2..]]);      // the same query for every memory
        var inner = new KernelInputs(plan.Gather(q), plan.Gather(x.K), plan.Gather(x.V),
            x.G is null ? null : plan.Gather(x.G), x.Beta is null ? null : plan.Gather(x.Beta),
            x.H0?.flatten(0, 1));                                            // [B·M, L, H, D], h0 [B·M, H, Dk, Dv]
        var (o, s) = MatrixKernels.Run(kind, KernelForm.Chunk, inner, chunkSize);
        var perMemory = plan.Scatter(o, t);                                  // [B, T, M, H, Dv], 0 where not routed
        var mixed = (perMemory * MixingWeights(x, perMemory.dtype).unsqueeze(-1).unsqueeze(-1)).sum(2);
        return Finish(kind, KernelForm.Chunk, x, mixed, s.unflatten(0, [b, m]), chunkSize);
    }

    /// <summary>The step form token by token.</summary>
    static MixtureResult StepLoop(MatrixKernelKind kind, MixtureInputs x)
    {
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[4];
        var states = x.H0?.to(dtype) ?? zeros([b, x.Memories, h, dk, dv], dtype, x.Q.device);
        // unbind: one backward node for all T slices (see DeltaKernel.StepLoop).
        Tensor[] Slices(Tensor t) => t.to(dtype).unbind(1);
        var (qs, ks, vs, idx, ws) = (Slices(x.Q), Slices(x.K), Slices(x.V), x.Indices.unbind(1), Slices(x.Weights));
        var (gs, bs) = (x.G is null ? null : Slices(x.G), x.Beta is null ? null : Slices(x.Beta));
        var outputs = new Tensor[qs.Length];
        for (int t = 0; t < qs.Length; t++)
            (outputs[t], states) = Step(kind, qs[t], ks[t], vs[t], gs?[t], bs?[t], idx[t], ws[t], states);
        return Finish(kind, KernelForm.Step, x, stack(outputs, 1), states, 64);
    }

    /// <summary>
    /// One token: q [B, H, Dk], k [B, M, H, Dk], v [B, M, H, Dv], g null | [B, M, H] | [B, M, H, Dk], beta [B, M, H],
    /// indices, weights [B, k], states [B, M, H, Dk, Dv]. Only the k routed states are read, stepped and written back.
    /// Returns o [B, H, Dv] (without the shared memory) and the new states.
    /// </summary>
    public static (Tensor O, Tensor States) Step(MatrixKernelKind kind, Tensor q, Tensor k, Tensor v, Tensor? g, Tensor? beta,
        Tensor indices, Tensor weights, Tensor states)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], top = indices.shape[1];
        Tensor Pick(Tensor t) => t.gather(1, Along(indices, t.shape)).flatten(0, 1);   // [B·k, ...]
        var qs = q.unsqueeze(1).expand([b, top, .. q.shape[1..]]).flatten(0, 1);
        var (o, s) = kind == MatrixKernelKind.Delta
            ? DeltaKernel.Step(qs, Pick(k), Pick(v), g is null ? null : Pick(g), Pick(beta!), Pick(states))
            : GatedLinearKernel.Step(qs, Pick(k), Pick(v), g is null ? null : Pick(g), Pick(states));
        var mixed = (o.unflatten(0, [b, top]) * weights.to(o.dtype).unsqueeze(-1).unsqueeze(-1)).sum(1);
        var updated = states.scatter(1, Along(indices, states.shape), s.unflatten(0, [b, top]));
        return (mixed.MoveToOuterDisposeScope(), updated.MoveToOuterDisposeScope());
    }

    /// <summary>indices [B, k] broadcast as a gather/scatter index over dim 1 of a [B, M, ...] tensor.</summary>
    static Tensor Along(Tensor indices, long[] shape)
    {
        var view = indices;
        for (int i = 2; i < shape.Length; i++) view = view.unsqueeze(-1);
        return view.expand([indices.shape[0], indices.shape[1], .. shape[2..]]);
    }

    /// <summary>Weights as a dense [B, T, M] (0 for memories a token is not routed to).</summary>
    public static Tensor MixingWeights(MixtureInputs x, ScalarType dtype)
    {
        var w = x.Weights.to(dtype);
        return zeros([w.shape[0], w.shape[1], x.Memories], dtype, w.device).scatter(2, x.Indices, w);
    }

    /// <summary>Adds the shared memory (run in the same form) and moves the results out of the caller's scope.</summary>
    internal static MixtureResult Finish(MatrixKernelKind kind, KernelForm form, MixtureInputs x, Tensor o, Tensor states, int chunkSize)
    {
        Tensor? sharedState = null;
        if (x.Shared is { } shared)
        {
            var (so, ss) = MatrixKernels.Run(kind, form, shared, chunkSize);
            o = o + so.to(o.dtype);
            sharedState = ss.MoveToOuterDisposeScope();
        }
        return new MixtureResult(o.to(x.Q.dtype).MoveToOuterDisposeScope(), states.MoveToOuterDisposeScope(), sharedState);
    }

    /// <summary>Checks shapes and routing, naming the tensor at fault; per-memory shapes are checked by the matrix kernel's
    /// rules.</summary>
    public static void Validate(MatrixKernelKind kind, MixtureInputs x, int chunkSize)
    {
        using var scope = NewDisposeScope();
        if (x.K.dim() != 5) throw Shape("k", x.K, "[B, T, M, H, Dk]");
        if (x.V.dim() != 5 || x.V.shape[2] != x.Memories) throw Shape("v", x.V, $"[B, T, {x.Memories}, H, Dv] (M from k)");
        long m = x.Memories;
        if (x.G is not null && (x.G.dim() < 4 || x.G.shape[2] != m)) throw Shape("g", x.G, $"[B, T, {m}, H] or [B, T, {m}, H, Dk]");
        if (x.Beta is not null && (x.Beta.dim() != 4 || x.Beta.shape[2] != m)) throw Shape("beta", x.Beta, $"[B, T, {m}, H]");
        if (x.H0 is not null && (x.H0.dim() != 5 || x.H0.shape[1] != m)) throw Shape("h0", x.H0, $"[B, {m}, H, Dk, Dv]");
        // Memory 0's slices must be a valid matrix-kernel call; that checks every other dimension.
        MatrixKernels.Validate(kind, new KernelInputs(x.Q, x.K.select(2, 0), x.V.select(2, 0), x.G?.select(2, 0),
            x.Beta?.select(2, 0), x.H0?.select(1, 0)), chunkSize);
        if (x.Shared is not null) MatrixKernels.Validate(kind, x.Shared, chunkSize);

        long b = x.Q.shape[0], t = x.Q.shape[1];
        if (x.Indices.dtype != ScalarType.Int64 || x.Indices.dim() != 3 || x.Indices.shape[0] != b || x.Indices.shape[1] != t)
            throw Shape("indices", x.Indices, $"[{b}, {t}, k] int64");
        long top = x.Indices.shape[2];
        if (top < 1 || top > m) throw new MnemoException($"indices route each token to {top} memories; expected 1 to {m}");
        if (!x.Weights.shape.SequenceEqual(x.Indices.shape)) throw Shape("weights", x.Weights, $"[{b}, {t}, {top}] like indices");
        if (x.Indices.numel() == 0) return;
        if (x.Indices.min().item<long>() < 0 || x.Indices.max().item<long>() >= m)
            throw new MnemoException($"indices must lie in [0, {m}), " +
                $"found {x.Indices.min().item<long>()} … {x.Indices.max().item<long>()}");
        var sorted = x.Indices.sort(-1).Values;
        if (top > 1 && sorted.diff(dim: -1).eq(0).any().item<bool>())
            throw new MnemoException("indices route a token to the same memory twice; each token's k memories must be distinct");
    }

    static MnemoException Shape(string name, Tensor t, string expected) =>
        new($"{name} has shape [{string.Join(", ", t.shape)}], expected {expected}");
}
