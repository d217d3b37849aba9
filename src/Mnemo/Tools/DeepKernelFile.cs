using System.Globalization;
using Mnemo.IO;
using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Tools;

/// <summary>How to run a deep-memory rule on named tensors (`mnemo kernel --rule titans …`).</summary>
/// <param name="Rule">a name of <see cref="DeepMemoryRule.Named"/></param>
/// <param name="Depth">layers of the memory MLP; null = as many as the file has w0.&lt;l&gt; tensors</param>
/// <param name="Hidden">hidden width of the memory MLP; null = 4·Dk</param>
/// <param name="Window">the Omega window c; null = the rule's own</param>
/// <param name="Backward">also compute the gradients of sum(o·do) + Σ sum(state·dstate)</param>
public sealed record DeepKernelRunOptions(
    string Rule, KernelForm Form = KernelForm.Chunk, int ChunkSize = 64, int? Depth = null, long? Hidden = null,
    MemoryActivation Activation = MemoryActivation.Gelu, bool ResidualNorm = false, int? Window = null, bool Backward = false);

/// <summary>What a deep run produced: the named outputs (bytes, ready to write) and a description of the run.</summary>
public sealed record DeepKernelFileResult(
    DeepKernelRunOptions Options, DeepMemoryRule Rule, MemoryMlp Mlp, ScalarType DType, long[] QShape,
    IReadOnlyList<SafeTensorEntry> Outputs, double Seconds)
{
    /// <summary>One line: rule, form, sizes, memory, dtype, outputs and the compute time.</summary>
    public string Summary(string? outputPath = null)
    {
        string form = Options.Form == KernelForm.Chunk ? $"chunk (C={Options.ChunkSize})"
            : $"{Options.Form.Name()} (C={Options.ChunkSize})";
        string hidden = Mlp.Depth > 1 ? $", hidden {Mlp.Hidden} {Mlp.Activation.ToString().ToLowerInvariant()}" : "";
        return $"{Rule.Name} {form} {TensorIO.ToFile(DType, "q").ToSpecName()}: " +
               $"B={QShape[0]} T={QShape[1]} H={QShape[2]} Dk={Mlp.KeyDim} Dv={Mlp.ValueDim}, depth {Mlp.Depth}{hidden}" +
               $"{(Mlp.ResidualNorm ? ", residual norm" : "")}, window {Rule.Window}; " + KernelFileIO.Wrote(Outputs, outputPath, Seconds);
    }
}

/// <summary>
/// Runs one deep-memory rule (<see cref="DeepMemoryRule.Named"/>) directly on tensors in fla's layout, as stored in a
/// safetensors file. Inputs: q, k [B, T, H, Dk], v [B, T, H, Dv]; per token and head [B, T, H]: theta (learning
/// rate), eta (momentum; rules whose learner keeps momentum), alpha (forgetting; optional), gamma (Omega-window
/// gates; optional, default 1), delta (Huber threshold; yaad); the initial weights w0.0 … w0.{L−1}, each [H, in, out].
/// Gates are probabilities used exactly as given. With backward also do [B, T, H, Dv] and, optionally, a cotangent
/// "d" + name for any final-state tensor. Outputs: o, the final state named as <see cref="DeepState.Tensors"/>
/// (w{l}, w{l}_chunk_start, s{l}, window_*), and with backward the gradient "d" + name of every input given.
/// </summary>
public static class DeepKernelFile
{
    /// <summary>The per-token inputs that may appear (w0.&lt;l&gt; come after them), in gradient order.</summary>
    static readonly string[] Gates = ["theta", "eta", "alpha", "gamma", "delta"];
    static readonly string[] Sequences = ["q", "k", "v"];
    const string WeightPrefix = "w0.";

    public static bool IsRule(string name) => TryRule(name) is not null;

    /// <summary>The rule with the given name (case-insensitive), or null.</summary>
    public static DeepMemoryRule? TryRule(string name) =>
        DeepMemoryRule.Named.Values.FirstOrDefault(r => string.Equals(r.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase));

    static DeepMemoryRule Resolve(DeepKernelRunOptions options)
    {
        var rule = TryRule(options.Rule) ?? throw Runtime.Names.Unknown("deep rule", options.Rule, DeepMemoryRule.Named.Keys);
        return options.Window is int c ? rule.WithWindow(c) : rule;
    }

    /// <summary>Reads <paramref name="inputPath"/>, runs the rule and writes the outputs to <paramref name="outputPath"/>
    /// atomically.</summary>
    public static DeepKernelFileResult Run(string inputPath, string outputPath, DeepKernelRunOptions options) =>
        KernelFileIO.RunFile(inputPath, outputPath, (file, name) => Run(file, options, name), r => r.Outputs, Metadata);

    /// <summary>Runs the rule on a parsed file; errors are prefixed with <paramref name="sourceName"/>.</summary>
    public static DeepKernelFileResult Run(SafeTensorsFile input, DeepKernelRunOptions options, string sourceName) =>
        KernelFileIO.Run(input, sourceName, names => CheckNames(names, options), tensors =>
        {
            var (entries, seconds) = KernelFileIO.Timed(() => Compute(tensors, options));
            var q = tensors["q"];
            return new DeepKernelFileResult(options, Resolve(options), Mlp(tensors, options), q.dtype, q.shape, entries, seconds);
        });

    /// <summary>
    /// Runs the rule on named tensors (see <see cref="DeepKernelFile"/>) and returns the named outputs in order: o, the
    /// final state, then the gradients that apply. The caller owns (and disposes) the returned tensors.
    /// </summary>
    public static IReadOnlyList<(string Name, Tensor Value)> Compute(IReadOnlyDictionary<string, Tensor> inputs,
        DeepKernelRunOptions options)
    {
        CheckNames(inputs.Keys.ToList(), options);
        var rule = Resolve(options);
        int depth = Depth(inputs.Keys, options);
        var order = Sequences.Concat(Gates).Concat(Enumerable.Range(0, depth).Select(Weight)).ToArray();
        var dtype = KernelFileIO.CheckDTypes(inputs, order.Concat(inputs.Keys.Where(n => !order.Contains(n))
            .Order(StringComparer.Ordinal)));
        KernelFileIO.CheckValues(inputs, Domains);
        var mlp = Mlp(inputs, options);

        using var scope = NewDisposeScope();
        // Fresh leaves sharing the caller's storage, so gradients never land on the caller's tensors.
        var leaves = order.Where(inputs.ContainsKey).ToDictionary(n => n, n => inputs[n].detach().requires_grad_(options.Backward));
        var q = leaves["q"];
        CheckWeights(leaves, mlp, q.shape[2]);
        var x = new DeepInputs(q, leaves["k"], leaves["v"], leaves["theta"], leaves.GetValueOrDefault("eta"),
            leaves.GetValueOrDefault("alpha"), leaves.GetValueOrDefault("gamma"), leaves.GetValueOrDefault("delta"),
            [.. Enumerable.Range(0, depth).Select(l => leaves[Weight(l)])]);
        DeepKernels.Validate(rule, mlp, x);
        KernelFileIO.CheckNonEmpty(q, x.V);
        var dO = inputs.GetValueOrDefault("do");
        long b = q.shape[0], t = q.shape[1], h = q.shape[2];
        if (dO is not null && !dO.shape.SequenceEqual(new[] { b, t, h, mlp.ValueDim }))
            throw KernelFileIO.Shape("do", dO, $"[{b}, {t}, {h}, {mlp.ValueDim}] like o");

        var (o, state) = DeepKernels.Run(rule, mlp, options.Form, x, options.ChunkSize);
        var final = state.Tensors().ToList();
        foreach (var (name, value) in final)
            if (inputs.GetValueOrDefault("d" + name) is { } cotangent && !cotangent.shape.SequenceEqual(value.shape))
                throw KernelFileIO.Shape("d" + name, cotangent, $"[{string.Join(", ", value.shape)}] like {name}");
        var outputs = new List<(string Name, Tensor Value)> { ("o", o.detach().to(dtype)) };
        outputs.AddRange(final.Select(s => (s.Name, s.Tensor.detach().to(dtype))));
        if (options.Backward)
        {
            var loss = (o * dO!).sum();
            foreach (var (name, value) in final)
                if (inputs.GetValueOrDefault("d" + name) is { } cotangent) loss = loss + (value * cotangent).sum();
            loss.backward();
            foreach (var (name, leaf) in leaves)
                outputs.Add(("d" + name, leaf.grad is null ? zeros_like(leaf) : leaf.grad.detach().clone().to(dtype)));
        }
        foreach (var (_, value) in outputs) value.MoveToOuterDisposeScope();
        return outputs;
    }

    /// <summary>The metadata written beside the outputs, so a file says how it was made.</summary>
    public static Dictionary<string, string> Metadata(DeepKernelFileResult r) => new()
    {
        ["producer"] = "mnemo kernel",
        ["rule"] = r.Rule.Name,
        ["form"] = r.Options.Form.Name(),
        ["chunk_size"] = r.Options.ChunkSize.ToString(CultureInfo.InvariantCulture),
        ["depth"] = r.Mlp.Depth.ToString(CultureInfo.InvariantCulture),
        ["hidden"] = r.Mlp.Hidden.ToString(CultureInfo.InvariantCulture),
        ["activation"] = r.Mlp.Activation.ToString().ToLowerInvariant(),
        ["residual_norm"] = r.Mlp.ResidualNorm ? "true" : "false",
        ["window"] = r.Rule.Window.ToString(CultureInfo.InvariantCulture),
        ["backward"] = r.Options.Backward ? "true" : "false",
    };

    static string Weight(int l) => WeightPrefix + l.ToString(CultureInfo.InvariantCulture);

    /// <summary>The layer index of a "w0.&lt;l&gt;" name, or null.</summary>
    static int? Layer(string name) =>
        name.StartsWith(WeightPrefix, StringComparison.Ordinal)
        && int.TryParse(name[WeightPrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int l)
        && Weight(l) == name ? l : null;

    /// <summary>--depth, or as many layers as the highest w0.&lt;l&gt; in the file (at least 1).</summary>
    static int Depth(IEnumerable<string> names, DeepKernelRunOptions options)
    {
        if (options.Depth is int d) return d >= 1 ? d : throw new MnemoException($"--depth must be at least 1, got {d}");
        return Math.Max(1, names.Select(Layer).Max(l => (l ?? -1) + 1));
    }

    static MemoryMlp Mlp(IReadOnlyDictionary<string, Tensor> inputs, DeepKernelRunOptions options)
    {
        Tensor q = inputs["q"], v = inputs["v"];
        if (q.dim() != 4) throw KernelFileIO.Shape("q", q, "[B, T, H, Dk]");
        if (v.dim() != 4) throw KernelFileIO.Shape("v", v, "[B, T, H, Dv]");
        long hidden = options.Hidden ?? 4 * q.shape[3];
        if (hidden < 1) throw new MnemoException($"--hidden must be at least 1, got {hidden}");
        return new MemoryMlp(q.shape[3], v.shape[3], Depth(inputs.Keys, options), hidden, options.Activation, options.ResidualNorm);
    }

    /// <summary>Each w0.&lt;l&gt; is [H, in, out] of its layer; the message says where in and out come from.</summary>
    /// <summary>Where the gates must lie: they are used as given (docs/cli.md#deep-rules).</summary>
    static readonly Dictionary<string, (double, double, string)> Domains = new()
    {
        ["theta"] = (0, double.PositiveInfinity, "a learning rate, at least 0"),
        ["eta"] = (0, 1, "a momentum factor in [0, 1]"),
        ["alpha"] = (0, 1, "a forgetting probability in [0, 1]"),
        ["gamma"] = (0, 1, "a window gate in [0, 1]"),
        ["delta"] = (0, double.PositiveInfinity, "a Huber threshold, at least 0"),
    };

    static void CheckWeights(IReadOnlyDictionary<string, Tensor> leaves, MemoryMlp mlp, long heads)
    {
        var layers = mlp.Layers;
        for (int l = 0; l < layers.Length; l++)
        {
            var (din, dout) = layers[l];
            var w = leaves[Weight(l)];
            if (w.dim() == 3 && w.shape.SequenceEqual(new[] { heads, din, dout })) continue;
            string from = l == 0 ? $"Dk {din}" : $"hidden {din}", to = l == layers.Length - 1 ? $"Dv {dout}" : $"hidden {dout}";
            throw KernelFileIO.Shape(Weight(l), w, $"[{heads}, {din}, {dout}]: layer {l} of the depth-{mlp.Depth} " +
                $"memory maps {from} to {to}" +
                (mlp.Depth > 1 ? " (--hidden sets the hidden width, default 4·Dk)" : ""));
        }
    }

    /// <summary>Final-state tensor names for the rule and depth (what DeepState.Tensors() yields), from a tiny probe state.</summary>
    static IReadOnlyList<string> StateNames(DeepMemoryRule rule, int depth)
    {
        using var scope = NewDisposeScope();
        var w0 = Enumerable.Range(0, depth).Select(_ => zeros(1, 1, 1)).ToArray();
        return [.. DeepState.Initial(rule, w0, 1, 1, 1, ScalarType.Float32).Tensors().Select(s => s.Name)];
    }

    /// <summary>Unknown names, names the rule (or a forward-only run) does not use, then missing ones.</summary>
    static void CheckNames(IReadOnlyCollection<string> names, DeepKernelRunOptions options)
    {
        var rule = Resolve(options);
        int depth = Depth(names, options);
        var stateNames = StateNames(rule, depth);
        var cotangents = new[] { "do" }.Concat(stateNames.Select(n => "d" + n)).ToList();
        KernelFileIO.CheckKnown(names, n => Sequences.Contains(n) || Gates.Contains(n) || Layer(n) is not null || cotangents.Contains(n),
            $"{string.Join(", ", Sequences.Concat(Gates))}, w0.<l> (l < depth), do, and d + a final-state name (" +
            $"{string.Join(", ", stateNames)})");
        foreach (var n in names)
            if (Layer(n) is int l && l >= depth)
                throw new MnemoException($"tensor \"{n}\" is not used by the depth-{depth} memory, " +
                    $"whose layers are w0.0 … w0.{depth - 1} (--depth)");
        if (names.Contains("eta") && !rule.Learner.HasMomentum)
            throw new MnemoException($"tensor \"eta\" is not used by rule {rule.Name}, whose learner keeps no momentum");
        if (names.Contains("delta") && !rule.Objective.NeedsDelta)
            throw new MnemoException($"tensor \"delta\" is not used by rule {rule.Name}; " +
                $"only the Huber objective (yaad) takes a threshold");
        KernelFileIO.NoCotangentsWithoutBackward(cotangents.Where(names.Contains), options.Backward);

        var required = new List<(string Name, string Shape, string Why)>
        {
            ("q", "[B, T, H, Dk]", "every rule"), ("k", "[B, T, H, Dk]", "every rule"), ("v", "[B, T, H, Dv]", "every rule"),
            ("theta", "[B, T, H]", "every rule (the learning rate)"),
        };
        if (rule.Learner.HasMomentum) required.Add(("eta", "[B, T, H]", $"rule {rule.Name} (its learner keeps momentum)"));
        if (rule.Objective.NeedsDelta) required.Add(("delta", "[B, T, H]", $"rule {rule.Name} (the Huber threshold)"));
        for (int l = 0; l < depth; l++) required.Add((Weight(l), "[H, in, out]", $"the depth-{depth} memory (its initial weights)"));
        if (options.Backward) required.Add(("do", "[B, T, H, Dv]", "--backward"));
        foreach (var (need, shape, why) in required)
            if (!names.Contains(need)) throw new MnemoException($"missing tensor \"{need}\" {shape}, which {why} needs");
        if (options.ChunkSize < 1) throw new MnemoException($"--chunk-size must be at least 1, got {options.ChunkSize}");
    }
}
