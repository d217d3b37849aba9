using System.CommandLine;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;

namespace Mnemo.Cli.Commands;

/// <summary>Runs one matrix-memory rule on tensors from a safetensors file (see <see cref="KernelFile"/>).</summary>
public static class KernelCommand
{
    public static Command Create()
    {
        var rule = new Option<string>("--rule")
        {
            Description = $"The rule to apply: {string.Join(", ", KernelRules.Names)}",
            HelpName = "NAME",
            Required = true,
        };
        var input = new Option<string>("--input", "-i")
        {
            Description = "safetensors file in fla's layout: q, k [B,T,H,Dk], v [B,T,H,Dv], g [B,T,H] or [B,T,H,Dk] (log decay), " +
                          "beta [B,T,H], optional h0 [B,H,Dk,Dv]; with --backward also do [B,T,H,Dv] and optional dht [B,H,Dk,Dv]",
            HelpName = "FILE",
            Required = true,
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = "safetensors file to write (atomically): o, ht, and with --backward the gradients dq, dk, dv, dg, dbeta, dh0 that apply",
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
        var scale = new Option<double>("--scale")
        {
            Description = "Multiplies q before the kernel; dq is still the gradient with respect to the q in the file",
            HelpName = "S",
            DefaultValueFactory = _ => 1.0,
        };
        var backward = new Option<bool>("--backward")
        {
            Description = "Also write the gradients of sum(o·do) + sum(ht·dht) with respect to every input given",
        };
        var command = new Command("kernel", "Run one matrix-memory rule on tensors from a safetensors file, to cross-check Mnemo against another framework (e.g. fla).")
        {
            rule, input, output, form, chunkSize, scale, backward,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var options = new KernelRunOptions(
                KernelRules.ParseRule(parse.GetValue(rule)!), KernelRules.ParseForm(parse.GetValue(form)!),
                parse.GetValue(chunkSize), parse.GetValue(scale), parse.GetValue(backward));
            TorchRuntime.Initialise();
            string outputPath = parse.GetValue(output)!;
            var result = KernelFile.Run(parse.GetValue(input)!, outputPath, options);
            Console.WriteLine(result.Summary(outputPath));
            return 0;
        }));
        return command;
    }
}
