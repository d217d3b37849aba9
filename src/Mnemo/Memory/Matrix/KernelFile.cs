using System.Diagnostics;
using System.Globalization;
using Mnemo.IO;
using static TorchSharp.torch;

namespace Mnemo.Memory.Matrix;

/// <summary>The four matrix-memory rules that can be run by name (`mnemo kernel --rule NAME`).</summary>
public enum KernelRule
{
    /// <summary>Linear attention: the gated linear kernel with no gate.</summary>
    Linear,
    /// <summary>The gated linear kernel with a scalar ([B, T, H]) or per-channel ([B, T, H, Dk]) log-gate g.</summary>
    GatedLinear,
    /// <summary>DeltaNet: the delta kernel with β and no gate.</summary>
    Delta,
    /// <summary>Gated DeltaNet: the delta kernel with β and a scalar log-gate g.</summary>
    GatedDelta,
}

/// <summary>Names of rules and forms as the command line spells them, and what each rule takes.</summary>
public static class KernelRules
{
    /// <summary>Rule names, in the order of <see cref="KernelRule"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["linear", "gated-linear", "delta", "gated-delta"];

    /// <summary>Form names, in the order of <see cref="KernelForm"/>.</summary>
    public static IReadOnlyList<string> FormNames { get; } = ["naive", "step", "chunk"];

    public static string Name(this KernelRule rule) => Names[(int)rule];

    public static string Name(this KernelForm form) => FormNames[(int)form];

    public static KernelRule ParseRule(string name) =>
        (KernelRule)IndexOf(Names, name, "rule");

    public static KernelForm ParseForm(string name) =>
        (KernelForm)IndexOf(FormNames, name, "form");

    public static MatrixKernelKind Kind(this KernelRule rule) =>
        rule is KernelRule.Linear or KernelRule.GatedLinear ? MatrixKernelKind.GatedLinear : MatrixKernelKind.Delta;

    public static bool TakesGate(this KernelRule rule) => rule is KernelRule.GatedLinear or KernelRule.GatedDelta;

    public static bool TakesBeta(this KernelRule rule) => rule.Kind() == MatrixKernelKind.Delta;

    static int IndexOf(IReadOnlyList<string> names, string name, string what)
    {
        for (int i = 0; i < names.Count; i++)
            if (string.Equals(names[i], name?.Trim(), StringComparison.OrdinalIgnoreCase)) return i;
        throw new MnemoException($"unknown {what} \"{name}\"; allowed: {string.Join(", ", names)}");
    }
}

/// <summary>How to run a rule on named tensors.</summary>
/// <param name="Scale">Multiplies q before the kernel; gradients are still taken with respect to the unscaled q.</param>
/// <param name="Backward">Also compute the gradients of sum(o·do) + sum(ht·dht).</param>
public sealed record KernelRunOptions(
    KernelRule Rule, KernelForm Form = KernelForm.Chunk, int ChunkSize = 64, double Scale = 1, bool Backward = false);

/// <summary>What a run produced: the named outputs (bytes, ready to write) and a description of the run.</summary>
public sealed record KernelFileResult(
    KernelRunOptions Options, ScalarType DType, long[] QShape, long[] VShape, long[]? GShape, bool HasH0,
    IReadOnlyList<SafeTensorEntry> Outputs, double Seconds)
{
    /// <summary>One line: rule, form, sizes, dtype, outputs and the compute time.</summary>
    public string Summary(string? outputPath = null)
    {
        var o = Options;
        string form = o.Form == KernelForm.Chunk ? $"chunk (C={o.ChunkSize})" : o.Form.Name();
        string gate = GShape is null ? "" : GShape.Length == 4 ? ", g per channel" : ", g per head";
        string scale = o.Scale == 1 ? "" : $", scale {o.Scale.ToString("R", CultureInfo.InvariantCulture)}";
        string where = outputPath is null ? "" : $" to {outputPath}";
        return $"{o.Rule.Name()} {form} {TensorIO.ToFile(DType, "q").ToSpecName()}: " +
               $"B={QShape[0]} T={QShape[1]} H={QShape[2]} Dk={QShape[3]} Dv={VShape[3]}{gate}{(HasH0 ? ", h0" : "")}{scale}; " +
               $"wrote {string.Join(", ", Outputs.Select(e => e.Name))}{where} in {Seconds.ToString("F3", CultureInfo.InvariantCulture)} s";
    }
}

/// <summary>
/// Runs one matrix-memory rule directly on tensors in fla's layout, as stored in a safetensors file, so results can
/// be cross-checked against another framework. Inputs: q, k [B, T, H, Dk], v [B, T, H, Dv], g (log decay,
/// [B, T, H] or, for gated-linear, [B, T, H, Dk]), beta [B, T, H], h0 [B, H, Dk, Dv]; with backward also do
/// [B, T, H, Dv] and dht [B, H, Dk, Dv]. Outputs: o, ht and with backward the gradients dq, dk, dv, dg, dbeta, dh0
/// of sum(o·do) + sum(ht·dht), for the inputs that were given. The rule is applied exactly as the recurrence
/// states: no projections, normalisation or feature maps. Anything a rule does not use is an error.
/// </summary>
public static class KernelFile
{
    /// <summary>Every tensor name an input file may hold.</summary>
    public static IReadOnlyList<string> InputNames { get; } = ["q", "k", "v", "g", "beta", "h0", "do", "dht"];

    /// <summary>The inputs that get gradients (in output order), each output named "d" + input.</summary>
    static readonly string[] Differentiable = ["q", "k", "v", "g", "beta", "h0"];

    /// <summary>Reads <paramref name="inputPath"/>, runs the rule and writes the outputs to <paramref name="outputPath"/> atomically.</summary>
    public static KernelFileResult Run(string inputPath, string outputPath, KernelRunOptions options)
    {
        if (!File.Exists(inputPath))
            throw new MnemoException(Directory.Exists(inputPath) ? $"{inputPath}: is a folder, not a safetensors file" : $"{inputPath}: no such file");
        if (string.Equals(Path.GetFullPath(inputPath), Path.GetFullPath(outputPath), StringComparison.Ordinal))
            throw new MnemoException($"{outputPath}: the output would overwrite the input; choose another output file");
        var result = Run(SafeTensors.Read(inputPath), options, inputPath);
        SafeTensors.Write(outputPath, result.Outputs, Metadata(options));
        return result;
    }

    /// <summary>Runs the rule on a parsed file; errors are prefixed with <paramref name="sourceName"/>.</summary>
    public static KernelFileResult Run(SafeTensorsFile input, KernelRunOptions options, string sourceName)
    {
        try
        {
            // Names and dtypes are checked on the entries, before any tensor is made.
            CheckNames(input.Tensors.Select(e => e.Name).ToList(), options);
            foreach (var e in input.Tensors)
                if (e.DType is not (SafeTensorDType.F32 or SafeTensorDType.F64))
                    throw new MnemoException($"tensor \"{e.Name}\" is {e.DType.ToSpecName()}; kernel inputs must be F32 or F64");

            using var scope = NewDisposeScope();
            var tensors = input.Tensors.ToDictionary(e => e.Name, TensorIO.ToTensor);
            var clock = Stopwatch.StartNew();
            var outputs = Compute(tensors, options);
            double seconds = clock.Elapsed.TotalSeconds;
            var entries = outputs.Select(kv => TensorIO.ToEntry(kv.Name, kv.Value)).ToList();
            return new KernelFileResult(options, tensors["q"].dtype, tensors["q"].shape, tensors["v"].shape,
                tensors.GetValueOrDefault("g")?.shape, tensors.ContainsKey("h0"), entries, seconds);
        }
        catch (MnemoException e) when (e is not SafeTensorsFormatException)
        {
            throw new MnemoException($"{sourceName}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Runs the rule on named tensors (see <see cref="KernelFile"/> for names and shapes) and returns the named
    /// outputs in order: o, ht, then the gradients that apply. The caller owns (and disposes) the returned tensors.
    /// </summary>
    public static IReadOnlyList<(string Name, Tensor Value)> Compute(IReadOnlyDictionary<string, Tensor> inputs, KernelRunOptions options)
    {
        CheckNames(inputs.Keys.ToList(), options);
        var dtype = CheckDTypes(inputs);
        if (!double.IsFinite(options.Scale))
            throw new MnemoException($"scale must be a finite number, got {options.Scale.ToString(CultureInfo.InvariantCulture)}");

        using var scope = NewDisposeScope();
        var kind = options.Rule.Kind();
        // The kernel's inputs are fresh leaves sharing the caller's storage, so gradients never land on the caller's tensors.
        var leaves = Differentiable.Where(inputs.ContainsKey)
            .ToDictionary(name => name, name => inputs[name].detach().requires_grad_(options.Backward));
        var q = leaves["q"];
        var x = new KernelInputs(options.Scale == 1 ? q : q * options.Scale, leaves["k"], leaves["v"],
            leaves.GetValueOrDefault("g"), leaves.GetValueOrDefault("beta"), leaves.GetValueOrDefault("h0"));
        MatrixKernels.Validate(kind, x, options.ChunkSize);
        long b = q.shape[0], t = q.shape[1], h = q.shape[2], dk = q.shape[3], dv = x.V.shape[3];
        if (q.shape.Any(d => d == 0) || dv == 0)
            throw new MnemoException($"q has shape [{string.Join(", ", q.shape)}] and v [{string.Join(", ", x.V.shape)}]: every size must be at least 1");
        var dO = inputs.GetValueOrDefault("do");
        var dHt = inputs.GetValueOrDefault("dht");
        if (dO is not null && !dO.shape.SequenceEqual(new[] { b, t, h, dv })) throw Shape("do", dO, $"[{b}, {t}, {h}, {dv}] like o");
        if (dHt is not null && !dHt.shape.SequenceEqual(new[] { b, h, dk, dv })) throw Shape("dht", dHt, $"[{b}, {h}, {dk}, {dv}] like ht");

        var (o, ht) = MatrixKernels.Run(kind, options.Form, x, options.ChunkSize);
        var outputs = new List<(string Name, Tensor Value)> { ("o", o.detach().to(dtype)), ("ht", ht.detach().to(dtype)) };
        if (options.Backward)
        {
            var loss = (o * dO!).sum();
            if (dHt is not null) loss = loss + (ht * dHt).sum();
            loss.backward();
            foreach (var name in Differentiable.Where(leaves.ContainsKey))
            {
                var leaf = leaves[name];
                outputs.Add(("d" + name, leaf.grad is null ? zeros_like(leaf) : leaf.grad.detach().clone().to(dtype)));
            }
        }
        foreach (var (_, value) in outputs) value.MoveToOuterDisposeScope();
        return outputs;
    }

    /// <summary>The metadata written beside the outputs, so a file says how it was made.</summary>
    public static Dictionary<string, string> Metadata(KernelRunOptions options) => new()
    {
        ["producer"] = "mnemo kernel",
        ["rule"] = options.Rule.Name(),
        ["form"] = options.Form.Name(),
        ["chunk_size"] = options.ChunkSize.ToString(CultureInfo.InvariantCulture),
        ["scale"] = options.Scale.ToString("R", CultureInfo.InvariantCulture),
        ["backward"] = options.Backward ? "true" : "false",
    };

    /// <summary>Unknown names, names the rule (or a forward-only run) does not use, then missing ones.</summary>
    static void CheckNames(IReadOnlyCollection<string> names, KernelRunOptions options)
    {
        var unknown = names.Where(n => !InputNames.Contains(n)).ToList();
        if (unknown.Count > 0)
            throw new MnemoException($"unknown tensor{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(n => $"\"{n}\""))}; " +
                                     $"allowed names: {string.Join(", ", InputNames)}");
        var rule = options.Rule;
        string name = rule.Name();
        if (names.Contains("g") && !rule.TakesGate())
            throw new MnemoException($"tensor \"g\" is not used by rule {name}, which has no decay; use {(rule == KernelRule.Linear ? "gated-linear" : "gated-delta")} or remove g");
        if (names.Contains("beta") && !rule.TakesBeta())
            throw new MnemoException($"tensor \"beta\" is not used by rule {name}; only delta and gated-delta take beta");
        foreach (var cotangent in new[] { "do", "dht" })
            if (names.Contains(cotangent) && !options.Backward)
                throw new MnemoException($"tensor \"{cotangent}\" is only used with --backward");

        var required = new List<(string Name, string Shape, string Why)>
        {
            ("q", "[B, T, H, Dk]", "every rule"), ("k", "[B, T, H, Dk]", "every rule"), ("v", "[B, T, H, Dv]", "every rule"),
        };
        if (rule.TakesGate()) required.Add(("g", rule == KernelRule.GatedLinear ? "[B, T, H] or [B, T, H, Dk]" : "[B, T, H]", $"rule {name}"));
        if (rule.TakesBeta()) required.Add(("beta", "[B, T, H]", $"rule {name}"));
        if (options.Backward) required.Add(("do", "[B, T, H, Dv]", "--backward"));
        foreach (var (need, shape, why) in required)
            if (!names.Contains(need)) throw new MnemoException($"missing tensor \"{need}\" {shape}, which {why} needs");
    }

    /// <summary>Every input must be F32 or F64, all the same as q.</summary>
    static ScalarType CheckDTypes(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var dtype = inputs["q"].dtype;
        foreach (var name in InputNames.Where(inputs.ContainsKey))
        {
            var t = inputs[name].dtype;
            if (t is not (ScalarType.Float32 or ScalarType.Float64))
                throw new MnemoException($"tensor \"{name}\" is {Spec(t, name)}; kernel inputs must be F32 or F64");
            if (t != dtype)
                throw new MnemoException($"tensor \"{name}\" is {Spec(t, name)} but q is {Spec(dtype, "q")}; all inputs must share one dtype");
        }
        return dtype;
    }

    static string Spec(ScalarType t, string name)
    {
        try { return TensorIO.ToFile(t, name).ToSpecName(); }
        catch (MnemoException) { return t.ToString(); }
    }

    static MnemoException Shape(string name, Tensor t, string expected) =>
        new($"{name} has shape [{string.Join(", ", t.shape)}], expected {expected}");
}
