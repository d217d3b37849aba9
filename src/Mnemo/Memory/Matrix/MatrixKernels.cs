using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>The two matrix-memory kernels.</summary>
public enum MatrixKernelKind
{
    /// <summary>S_t = diag(exp g_t) S_{t−1} + k_tᵀ v_t (g optional: linear attention when absent).</summary>
    GatedLinear,
    /// <summary>S_t = (I − β_t k_tᵀk_t) diag(exp g_t) S_{t−1} + β_t k_tᵀ v_t (g optional: DeltaNet when absent; per head or
    /// per key channel), or in general S_t = (I − a_t b_tᵀ) diag(exp g_t) S_{t−1} + k_tᵀ v_t (see
    /// <see cref="DeltaKernel"/>).</summary>
    Delta,
}

/// <summary>The three forms every rule exists in; they must agree.</summary>
public enum KernelForm { Naive, Step, Chunk }

/// <summary>
/// Inputs of a kernel call in fla's layout (see the kernels for shapes). A delta rule takes either β (b = β k, the value
/// β v) or its own erase vector b in <paramref name="Erase"/> (with v the written value), and optionally a transition
/// vector a in <paramref name="Transition"/> (null: a = k); <paramref name="ReadBeforeDecay"/> makes b read the state
/// before the token's decay.
/// </summary>
public sealed record KernelInputs(Tensor Q, Tensor K, Tensor V, Tensor? G = null, Tensor? Beta = null, Tensor? H0 = null,
    Tensor? Erase = null, Tensor? Transition = null, bool ReadBeforeDecay = false);

/// <summary>Runs a kernel in a chosen form, checking shapes first so a mistake names the tensor at fault.</summary>
public static class MatrixKernels
{
    public static (Tensor O, Tensor State) Run(MatrixKernelKind kind, KernelForm form, KernelInputs x, int chunkSize = 64)
    {
        Validate(kind, x, chunkSize);
        // A chunk longer than the sequence is one chunk of the sequence: no padding to a size the input never reaches
        // (--chunk-size 2147483647 asked for 68 GB). For these kernels the chunk size is speed, never the result.
        chunkSize = (int)Math.Clamp(x.Q.shape[1], 1, chunkSize);
        return (kind, form) switch
        {
            (MatrixKernelKind.GatedLinear, KernelForm.Naive) => NaiveMatrixMemory.GatedLinear(x.Q, x.K, x.V, x.G, x.H0),
            (MatrixKernelKind.GatedLinear, KernelForm.Step) => GatedLinearKernel.StepLoop(x.Q, x.K, x.V, x.G, x.H0),
            (MatrixKernelKind.GatedLinear, KernelForm.Chunk) => GatedLinearKernel.Chunk(x.Q, x.K, x.V, x.G, x.H0, chunkSize),
            (MatrixKernelKind.Delta, KernelForm.Naive) => x.Erase is null ? NaiveMatrixMemory.Delta(x.Q, x.K, x.V, x.G, x.Beta!, x.H0)
                : NaiveMatrixMemory.GeneralDelta(x.Q, x.K, x.V, x.G, x.Erase, x.Transition, x.H0, x.ReadBeforeDecay),
            (MatrixKernelKind.Delta, KernelForm.Step) => DeltaKernel.StepLoop(x.Q, x.K, x.V, x.G, x.Beta, x.H0, x.Erase, x.Transition,
                x.ReadBeforeDecay),
            (MatrixKernelKind.Delta, KernelForm.Chunk) => DeltaKernel.Chunk(x.Q, x.K, x.V, x.G, x.Beta, x.H0, chunkSize, x.Erase,
                x.Transition, x.ReadBeforeDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(form)),
        };
    }

    /// <summary>
    /// Streaming: continues from x.H0. A single token takes the step form (O(1) in the context length, no chunk
    /// padding); a longer piece (a prompt) the chunk form.
    /// </summary>
    public static (Tensor O, Tensor State) Continue(MatrixKernelKind kind, KernelInputs x, int chunkSize)
    {
        if (x.Q.shape[1] != 1) return Run(kind, KernelForm.Chunk, x, chunkSize);
        using var scope = NewDisposeScope();
        var state = x.H0 ?? Chunks.InitialState(null, x.Q, x.V, Chunks.ComputeType(x.Q));
        Tensor? First(Tensor? t) => t?.select(1, 0);
        var (q, k, v, g, beta, erase, transition) = (First(x.Q)!, First(x.K)!, First(x.V)!, First(x.G), First(x.Beta), First(x.Erase),
            First(x.Transition));
        bool delta = kind == MatrixKernelKind.Delta;
        // A decoded token (no gradient) takes the fused step; its numbers are the composed step's up to rounding.
        var (o, s) = transition is null && FusedStep.Applies(q, k, v, g, delta ? beta ?? erase : null, state)
            ? delta ? FusedStep.Delta(q, k, v, g, beta, state, erase, x.ReadBeforeDecay) : FusedStep.GatedLinear(q, k, v, g, state)
            : delta ? DeltaKernel.Step(q, k, v, g, beta, state, erase, transition, x.ReadBeforeDecay)
            : GatedLinearKernel.Step(q, k, v, g, state);
        return (o.unsqueeze(1).MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope());
    }

    public static void Validate(MatrixKernelKind kind, KernelInputs x, int chunkSize)
    {
        if (chunkSize < 1) throw new MnemoException($"chunk size must be at least 1, got {chunkSize}");
        if (x.Q.dim() != 4) throw Shape("q", x.Q, "[B, T, H, Dk]");
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], dk = x.Q.shape[3];
        if (!x.K.shape.SequenceEqual(x.Q.shape)) throw Shape("k", x.K, $"[{b}, {t}, {h}, {dk}] like q");
        if (x.V.dim() != 4 || x.V.shape[0] != b || x.V.shape[1] != t || x.V.shape[2] != h) throw Shape("v", x.V, $"[{b}, {t}, {h}, Dv]");
        long dv = x.V.shape[3];
        if (x.G is not null)
        {
            bool scalar = x.G.shape.SequenceEqual(new[] { b, t, h });
            bool channel = x.G.shape.SequenceEqual(new[] { b, t, h, dk });
            if (!scalar && !channel) throw Shape("g", x.G, $"[{b}, {t}, {h}] or [{b}, {t}, {h}, {dk}]");
        }
        if (kind == MatrixKernelKind.Delta)
        {
            if ((x.Beta is null) == (x.Erase is null))
                throw new MnemoException("the delta rule needs either beta [B, T, H] or an erase vector [B, T, H, Dk], not both");
            if (x.Beta is not null && !x.Beta.shape.SequenceEqual(new[] { b, t, h })) throw Shape("beta", x.Beta, $"[{b}, {t}, {h}]");
            if (x.Erase is not null && !x.Erase.shape.SequenceEqual(x.Q.shape))
                throw Shape("erase", x.Erase, $"[{b}, {t}, {h}, {dk}] like q");
            if ((x.Transition is not null || x.ReadBeforeDecay) && x.Erase is null)
                throw new MnemoException("a transition vector or a read before the decay goes with an erase vector (with beta the rule is "
                    + "the plain delta rule)");
            if (x.Transition is not null && !x.Transition.shape.SequenceEqual(x.Q.shape))
                throw Shape("transition", x.Transition, $"[{b}, {t}, {h}, {dk}] like q");
        }
        else if (x.Erase is not null || x.Transition is not null || x.ReadBeforeDecay)
            throw new MnemoException("erase and transition vectors belong to the delta rule, not the gated linear kernel");
        if (x.H0 is not null && !x.H0.shape.SequenceEqual(new[] { b, h, dk, dv })) throw Shape("h0", x.H0, $"[{b}, {h}, {dk}, {dv}]");
        foreach (var (name, tensor) in new[] { ("q", x.Q), ("k", x.K), ("v", x.V), ("g", x.G), ("beta", x.Beta), ("h0", x.H0),
                     ("erase", x.Erase), ("transition", x.Transition) })
            if (tensor is not null && !tensor.is_floating_point())
                throw new MnemoException($"{name} must be floating point, got {tensor.dtype}");
    }

    static MnemoException Shape(string name, Tensor t, string expected) =>
        new($"{name} has shape [{string.Join(", ", t.shape)}], expected {expected}");
}
