using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>Runs a deep-memory rule in a chosen form, checking shapes first so a mistake names the tensor at fault.</summary>
public static class DeepKernels
{
    public static (Tensor O, DeepState State) Run(DeepMemoryRule rule, MemoryMlp mlp, KernelForm form, DeepInputs x, int chunkSize)
    {
        if (chunkSize < 1) throw new MnemoException($"chunk size must be at least 1, got {chunkSize}");
        return form switch
        {
            KernelForm.Naive => NaiveDeepMemory.Run(rule, mlp, x, chunkSize),
            KernelForm.Step => DeepKernel.StepLoop(rule, mlp, x, chunkSize),
            KernelForm.Chunk => DeepKernel.Chunk(rule, mlp, x, chunkSize),
            _ => throw new ArgumentOutOfRangeException(nameof(form)),
        };
    }

    /// <summary>Streaming: one token takes the step form, a longer piece (a prompt) the chunk form; both continue
    /// from x.State, including a chunk left unfinished by the previous call.</summary>
    public static (Tensor O, DeepState State) Continue(DeepMemoryRule rule, MemoryMlp mlp, DeepInputs x, int chunkSize) =>
        x.Q.shape[1] == 1 ? DeepKernel.StepLoop(rule, mlp, x, chunkSize) : DeepKernel.Chunk(rule, mlp, x, chunkSize);

    /// <summary>Initial memory weights [H, in, out] per layer: N(0, s²) with the retention's scale s
    /// (<see cref="Retention.InitialStd"/>; 1/√in, like a fresh linear layer, unless the retention maps the raw state),
    /// from the given generator (or the global one), then placed by <see cref="Retention.Start"/>. With
    /// <paramref name="zeroOutput"/> the last layer starts at zero (unless the retention cannot start there), so a fresh
    /// memory reads 0 like an empty matrix memory instead of noise that would drown the first writes; the inner
    /// gradients of the last layer are nonzero from the first token and bring the others along.</summary>
    public static Tensor[] InitialWeights(MemoryMlp mlp, long heads, ScalarType dtype = ScalarType.Float32, Generator? generator = null,
        bool zeroOutput = false, Retention? retention = null)
    {
        retention ??= new DecayRetention();
        return mlp.Layers.Select((s, l) => zeroOutput && l == mlp.Depth - 1 && retention.MayStartAtZero
            ? zeros([heads, s.In, s.Out], dtype)
            : retention.Start(randn([heads, s.In, s.Out], dtype, generator: generator) * retention.InitialStd(s.In))).ToArray();
    }

    public static void Validate(DeepMemoryRule rule, MemoryMlp mlp, DeepInputs x)
    {
        if (x.Q.dim() != 4) throw Shape("q", x.Q, "[B, T, H, Dk]");
        long b = x.Q.shape[0], t = x.Q.shape[1], h = x.Q.shape[2], dk = x.Q.shape[3];
        if (dk != mlp.KeyDim) throw new MnemoException($"q has head size {dk} but the memory's key size is {mlp.KeyDim}");
        if (!x.K.shape.SequenceEqual(x.Q.shape)) throw Shape("k", x.K, $"[{b}, {t}, {h}, {dk}] like q");
        if (x.V.dim() != 4 || x.V.shape[0] != b || x.V.shape[1] != t || x.V.shape[2] != h || x.V.shape[3] != mlp.ValueDim)
            throw Shape("v", x.V, $"[{b}, {t}, {h}, {mlp.ValueDim}]");
        if (mlp.ResidualNorm && mlp.KeyDim != mlp.ValueDim)
            throw new MnemoException($"a residual memory (x + LN(mlp(x))) needs equal key and value sizes, " +
                $"got {mlp.KeyDim} and {mlp.ValueDim}");
        long[] scalar = [b, t, h];
        foreach (var (name, gate, required) in new[] { ("theta", x.Theta, true), ("eta", x.Eta, rule.Learner.HasMomentum),
                     ("alpha", x.Alpha, false), ("gamma", x.Gamma, false), ("delta", x.Delta, rule.Objective.NeedsDelta) })
        {
            if (gate is null)
            {
                if (required) throw new MnemoException($"rule {rule.Name} needs {name} [B, T, H]" +
                    (name == "eta" ? " (its learner keeps momentum)" : name == "delta" ? " (the Huber threshold)" : ""));
                continue;
            }
            if (!gate.shape.SequenceEqual(scalar)) throw Shape(name, gate, $"[{b}, {t}, {h}]");
        }
        if (x.State is null)
        {
            if (x.W0 is null) throw new MnemoException("the memory needs its initial weights w0 (or a state to continue from)");
            var layers = mlp.Layers;
            if (x.W0.Count != layers.Length)
                throw new MnemoException($"got {x.W0.Count} initial weight tensors, " +
                    $"the depth-{mlp.Depth} memory has {layers.Length} layers");
            for (int l = 0; l < layers.Length; l++)
            {
                var w = x.W0[l];
                var (din, dout) = layers[l];
                bool ok = (w.dim() == 3 && w.shape.SequenceEqual(new[] { h, din, dout }))
                    || (w.dim() == 4 && w.shape.SequenceEqual(new[] { b, h, din, dout }));
                if (!ok) throw Shape($"w0.{l}", w, $"[{h}, {din}, {dout}] or [{b}, {h}, {din}, {dout}]");
            }
        }
        foreach (var (name, tensor) in new[] { ("q", x.Q), ("k", x.K), ("v", x.V), ("theta", x.Theta) })
            if (!tensor.is_floating_point()) throw new MnemoException($"{name} must be floating point, got {tensor.dtype}");
    }

    static MnemoException Shape(string name, Tensor t, string expected) =>
        new($"{name} has shape [{string.Join(", ", t.shape)}], expected {expected}");
}
