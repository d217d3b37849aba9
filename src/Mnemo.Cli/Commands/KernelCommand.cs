using System.CommandLine;
using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using Mnemo.Tools;

namespace Mnemo.Cli.Commands;

/// <summary>Runs one matrix-memory rule (<see cref="KernelFile"/>) or deep-memory rule (<see cref="DeepKernelFile"/>)
/// on tensors from a safetensors file.</summary>
static class KernelCommand
{
    public static Command Create()
    {
        var rule = new Option<string>("--rule")
        {
            Description = $"The rule to apply: matrix memories {string.Join(", ", KernelRules.Names)}; deep memories " +
                $"{string.Join(", ", DeepMemoryRule.Named.Keys)}",
            HelpName = "NAME",
            Required = true,
        };
        var input = new Option<string>("--input", "-i")
        {
            Description = "safetensors file in fla's layout: q, k [B,T,H,Dk], v [B,T,H,Dv]; matrix rules: g [B,T,H] or [B,T,H,Dk] (log " +
                          "decay), beta [B,T,H], optional h0 [B,H,Dk,Dv]; deep rules: theta, eta (momentum rules), alpha (optional), " +
                          "gamma (optional), delta (yaad), all [B,T,H] probabilities/thresholds used as given, and w0.0 … w0.<depth-1> " +
                          "[H,in,out]; with --backward also do [B,T,H,Dv] and optional state cotangents (dht [B,H,Dk,Dv]; deep: d + a " +
                          "final-state name, e.g. dw0, ds0)",
            HelpName = "FILE",
            Required = true,
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "safetensors file to write (atomically): o, the final state (matrix: ht; deep: w<l>, w<l>_chunk_start, s<l>, " +
                          "window_*), and with --backward the gradient d<name> of every input given (dq, dk, dv, dg, dbeta, dh0; " +
                          "deep: dtheta, …, dw0.0, …)",
            HelpName = "FILE",
            Required = true,
        };
        var form = new Option<string>("--form")
        {
            Description = "naive (the recurrence as written), step (token by token) or chunk (chunkwise parallel)",
            HelpName = "FORM",
            DefaultValueFactory = _ => "chunk",
        };
        var chunkSize = new Option<int>("--chunk-size")
        {
            Description = "Chunk length of the chunk form",
            HelpName = "N",
            DefaultValueFactory = _ => 64,
        };
        var scale = new Option<double?>("--scale")
        {
            Description = "Matrix rules: multiplies q before the kernel; dq is still the gradient with respect to the " +
                "q in the file. Default: 1",
            HelpName = "S",
        };
        var depth = new Option<int?>("--depth")
        {
            Description = "Deep rules: layers of the memory MLP. Default: the number of w0.<l> tensors in the file",
            HelpName = "L",
        };
        var hidden = new Option<long?>("--hidden")
        {
            Description = "Deep rules: hidden width of the memory MLP (depth ≥ 2). Default: 4·Dk",
            HelpName = "N",
        };
        var activation = new Option<string?>("--activation")
        {
            Description = "Deep rules: the memory MLP's non-linearity, gelu or silu. Default: gelu",
            HelpName = "NAME",
        };
        var residualNorm = new Option<bool>("--residual-norm")
        {
            Description = "Deep rules: the memory is x + LN(mlp(x)) (parameter-free LayerNorm; needs Dk = Dv)",
        };
        var window = new Option<int?>("--window")
        {
            Description = "Deep rules: the Omega window c (tokens whose loss each step sums). Default: the rule's " +
                "(omeganet, atlas 4; others 1)",
            HelpName = "C",
        };
        var readBeforeDecay = new Option<bool>("--read-before-decay")
        {
            Description = "Delta rules with an erase vector: it reads the state before the token's decay, " +
                "S_t = (diag(e^g) − a bᵀ) S + k vᵀ (Comba, RWKV-7) rather than (I − a bᵀ) diag(e^g) S + k vᵀ",
        };
        var backward = new Option<bool>("--backward")
        {
            Description = "Also write the gradients of sum(o·do) + sum(state·dstate) with respect to every input given",
        };
        var command = new Command("kernel", "Run one memory rule (matrix or deep) on tensors from a safetensors file, " +
            "to cross-check Mnemo against another framework (e.g. fla).")
        {
            rule, input, output, form, chunkSize, scale, depth, hidden, activation, residualNorm, window, readBeforeDecay, backward,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            string name = parse.GetValue(rule)!, inputPath = parse.GetValue(input)!, outputPath = parse.GetValue(output)!;
            var kernelForm = KernelRules.ParseForm(parse.GetValue(form)!);
            int chunk = parse.GetValue(chunkSize);
            bool grads = parse.GetValue(backward);
            string summary;
            if (DeepKernelFile.IsRule(name))
            {
                if (parse.GetValue(scale) is not null)
                    throw new MnemoException("--scale applies to the matrix rules only; scale q in the file for a deep rule");
                if (parse.GetValue(readBeforeDecay))
                    throw new MnemoException("--read-before-decay applies to the delta rules only, not to " + name);
                var options = new DeepKernelRunOptions(name, kernelForm, chunk, parse.GetValue(depth), parse.GetValue(hidden),
                    Activation(parse.GetValue(activation)), parse.GetValue(residualNorm), parse.GetValue(window), grads);
                TorchRuntime.Initialise();
                summary = DeepKernelFile.Run(inputPath, outputPath, options).Summary(outputPath);
            }
            else
            {
                var matrixRule = Names.Find(KernelRules.Names, name) >= 0 ? KernelRules.ParseRule(name)
                    : throw Names.Unknown("rule", name, KernelRules.Names.Concat(DeepMemoryRule.Named.Keys));
                foreach (var (option, given) in new[] { ("--depth", parse.GetValue(depth) is not null),
                             ("--hidden", parse.GetValue(hidden) is not null), ("--activation", parse.GetValue(activation) is not null),
                             ("--residual-norm", parse.GetValue(residualNorm)), ("--window", parse.GetValue(window) is not null) })
                    if (given)
                        throw new MnemoException($"{option} applies to the deep rules only " +
                            $"({string.Join(", ", DeepMemoryRule.Named.Keys)}), not to {matrixRule.Name()}");
                var options = new KernelRunOptions(matrixRule, kernelForm, chunk, parse.GetValue(scale) ?? 1, grads,
                    parse.GetValue(readBeforeDecay));
                TorchRuntime.Initialise();
                summary = KernelFile.Run(inputPath, outputPath, options).Summary(outputPath);
            }
            Console.WriteLine(summary);
            return 0;
        }));
        return command;
    }

    static MemoryActivation Activation(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "gelu" => MemoryActivation.Gelu,
        "silu" => MemoryActivation.Silu,
        _ => throw new MnemoException($"unknown activation \"{name}\"; allowed: gelu, silu"),
    };
}
