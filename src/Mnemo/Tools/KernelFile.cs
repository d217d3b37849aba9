using System.Globalization;
using Mnemo.IO;
using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Tools;

/// <summary>How to run a rule on named tensors.</summary>
/// <param name="Scale">Multiplies q before the kernel; gradients are still taken with respect to the unscaled q.</param>
/// <param name="Backward">Also compute the gradients of sum(o·do) + sum(ht·dht).</param>
/// <param name="ReadBeforeDecay">The delta rules' erase vector reads the state before the token's decay
/// (docs/mechanisms.md#the-generalized-delta-rule).</param>
public sealed record KernelRunOptions(
    KernelRule Rule, KernelForm Form = KernelForm.Chunk, int ChunkSize = 64, double Scale = 1, bool Backward = false,
    bool ReadBeforeDecay = false);

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
        string scale = (o.Scale == 1 ? "" : $", scale {o.Scale.ToString("R", CultureInfo.InvariantCulture)}")
            + (o.ReadBeforeDecay ? ", read before the decay" : "");
        return $"{o.Rule.Name()} {form} {TensorIO.ToFile(DType, "q").ToSpecName()}: " +
               $"B={QShape[0]} T={QShape[1]} H={QShape[2]} Dk={QShape[3]} Dv={VShape[3]}{gate}{(HasH0 ? ", h0" : "")}{scale}; " +
               KernelFileIO.Wrote(Outputs, outputPath, Seconds);
    }
}

/// <summary>
/// Runs one matrix-memory rule directly on tensors in fla's layout, as stored in a safetensors file, so results can
/// be cross-checked against another framework. Inputs: q, k [B, T, H, Dk], v [B, T, H, Dv], g (log decay,
/// [B, T, H] or [B, T, H, Dk]), beta [B, T, H] or, for the generalized delta rule, erase (b) and transition (a)
/// [B, T, H, Dk], h0 [B, H, Dk, Dv]; with backward also do [B, T, H, Dv] and dht [B, H, Dk, Dv]. Outputs: o, ht and
/// with backward the gradients dq, dk, dv, dg, dbeta, derase, dtransition, dh0 of sum(o·do) + sum(ht·dht), for the
/// inputs that were given. The rule is applied exactly as the recurrence
/// states: no projections, normalisation or feature maps. Anything a rule does not use is an error.
/// </summary>
public static class KernelFile
{
    /// <summary>Every tensor name an input file may hold.</summary>
    public static IReadOnlyList<string> InputNames { get; } = ["q", "k", "v", "g", "beta", "erase", "transition", "h0", "do", "dht"];

    /// <summary>The inputs that get gradients (in output order), each output named "d" + input.</summary>
    static readonly string[] Differentiable = ["q", "k", "v", "g", "beta", "erase", "transition", "h0"];

    /// <summary>Reads <paramref name="inputPath"/>, runs the rule and writes the outputs to <paramref name="outputPath"/>
    /// atomically.</summary>
    public static KernelFileResult Run(string inputPath, string outputPath, KernelRunOptions options) =>
        KernelFileIO.RunFile(inputPath, outputPath, (file, name) => Run(file, options, name), r => r.Outputs, _ => Metadata(options));

    /// <summary>Runs the rule on a parsed file; errors are prefixed with <paramref name="sourceName"/>.</summary>
    public static KernelFileResult Run(SafeTensorsFile input, KernelRunOptions options, string sourceName) =>
        KernelFileIO.Run(input, sourceName, names => CheckNames(names, options), tensors =>
        {
            var (entries, seconds) = KernelFileIO.Timed(() => Compute(tensors, options));
            return new KernelFileResult(options, tensors["q"].dtype, tensors["q"].shape, tensors["v"].shape,
                tensors.GetValueOrDefault("g")?.shape, tensors.ContainsKey("h0"), entries, seconds);
        });

    /// <summary>
    /// Runs the rule on named tensors (see <see cref="KernelFile"/> for names and shapes) and returns the named
    /// outputs in order: o, ht, then the gradients that apply. The caller owns (and disposes) the returned tensors.
    /// </summary>
    public static IReadOnlyList<(string Name, Tensor Value)> Compute(IReadOnlyDictionary<string, Tensor> inputs, KernelRunOptions options)
    {
        CheckNames(inputs.Keys.ToList(), options);
        var dtype = KernelFileIO.CheckDTypes(inputs, InputNames);
        KernelFileIO.CheckValues(inputs, Domains);
        if (!double.IsFinite(options.Scale))
            throw new MnemoException($"scale must be a finite number, got {options.Scale.ToString(CultureInfo.InvariantCulture)}");

        using var scope = NewDisposeScope();
        var kind = options.Rule.Kind();
        // The kernel's inputs are fresh leaves sharing the caller's storage, so gradients never land on the caller's tensors.
        var leaves = Differentiable.Where(inputs.ContainsKey)
            .ToDictionary(name => name, name => inputs[name].detach().requires_grad_(options.Backward));
        var q = leaves["q"];
        var x = new KernelInputs(options.Scale == 1 ? q : q * options.Scale, leaves["k"], leaves["v"],
            leaves.GetValueOrDefault("g"), leaves.GetValueOrDefault("beta"), leaves.GetValueOrDefault("h0"),
            leaves.GetValueOrDefault("erase"), leaves.GetValueOrDefault("transition"), options.ReadBeforeDecay);
        MatrixKernels.Validate(kind, x, options.ChunkSize);
        long b = q.shape[0], t = q.shape[1], h = q.shape[2], dk = q.shape[3], dv = x.V.shape[3];
        KernelFileIO.CheckNonEmpty(q, x.V);
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

    /// <summary>Where the gates must lie: g is a log-decay (a decay e^g ≤ 1).</summary>
    static readonly Dictionary<string, (double, double, string)> Domains = new()
    {
        ["g"] = (double.NegativeInfinity, 0, "g is a natural-log decay, at most 0"),
    };

    /// <summary>The metadata written beside the outputs, so a file says how it was made.</summary>
    public static Dictionary<string, string> Metadata(KernelRunOptions options) => new()
    {
        ["producer"] = "mnemo kernel",
        ["rule"] = options.Rule.Name(),
        ["form"] = options.Form.Name(),
        ["chunk_size"] = options.ChunkSize.ToString(CultureInfo.InvariantCulture),
        ["scale"] = options.Scale.ToString("R", CultureInfo.InvariantCulture),
        ["backward"] = options.Backward ? "true" : "false",
        ["read_before_decay"] = options.ReadBeforeDecay ? "true" : "false",
    };

    /// <summary>Unknown names, names the rule (or a forward-only run) does not use, then missing ones.</summary>
    static void CheckNames(IReadOnlyCollection<string> names, KernelRunOptions options)
    {
        KernelFileIO.CheckKnown(names, InputNames.Contains, string.Join(", ", InputNames));
        var rule = options.Rule;
        string name = rule.Name();
        if (names.Contains("g") && !rule.TakesGate())
            throw new MnemoException($"tensor \"g\" is not used by rule {name}, which has no decay; " +
                $"use {(rule == KernelRule.Linear ? "gated-linear" : "gated-delta")} or remove g");
        if (names.Contains("beta") && !rule.TakesBeta())
            throw new MnemoException($"tensor \"beta\" is not used by rule {name}; only delta and gated-delta take beta");
        foreach (var general in new[] { "erase", "transition" }.Where(names.Contains))
            if (!rule.TakesBeta())
                throw new MnemoException($"tensor \"{general}\" is not used by rule {name}; only delta and gated-delta take it");
        if (options.ReadBeforeDecay && !names.Contains("erase"))
            throw new MnemoException("--read-before-decay needs an erase vector: tensor \"erase\" [B, T, H, Dk]");
        KernelFileIO.NoCotangentsWithoutBackward(new[] { "do", "dht" }.Where(names.Contains), options.Backward);

        var required = new List<(string Name, string Shape, string Why)>
        {
            ("q", "[B, T, H, Dk]", "every rule"), ("k", "[B, T, H, Dk]", "every rule"), ("v", "[B, T, H, Dv]", "every rule"),
        };
        if (rule.TakesGate())
            required.Add(("g", "[B, T, H] or [B, T, H, Dk]", $"rule {name}"));
        if (rule.TakesBeta() && !names.Contains("erase"))
            required.Add(("beta", "[B, T, H] (or an erase vector \"erase\" [B, T, H, Dk])", $"rule {name}"));
        if (options.Backward) required.Add(("do", "[B, T, H, Dv]", "--backward"));
        foreach (var (need, shape, why) in required)
            if (!names.Contains(need)) throw new MnemoException($"missing tensor \"{need}\" {shape}, which {why} needs");
    }

    static MnemoException Shape(string name, Tensor t, string expected) => KernelFileIO.Shape(name, t, expected);
}
