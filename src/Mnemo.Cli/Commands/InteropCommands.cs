using System.CommandLine;
using Mnemo.Interop;
using Mnemo.Runtime;
using Mnemo.Text;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo import` and `mnemo export`: fla / Hugging Face checkpoint folders in and out (docs/interop.md).</summary>
static class InteropCommands
{
    public static Command Import()
    {
        var dir = new Argument<string>("DIR")
        {
            Description = "An fla checkpoint folder: config.json and model.safetensors (or shards with model.safetensors.index.json)",
        };
        var output = new Option<string>("--out", "-o")
        {
            Description = "The Mnemo run folder to create (must not exist or be empty)", Required = true,
        };
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "Mnemo's tokenizer for generate and eval: bytes (256 ids) or gpt2 (50257); the checkpoint's vocab_size must " +
                "hold its ids (fla's own tokenizer is not imported)",
            DefaultValueFactory = _ => "bytes",
        };
        var command = new Command("import",
            "Make a Mnemo run of an fla checkpoint (model_type gated_deltanet, delta_net, gla, kda or gated_deltaproduct, hybrids " +
            "with attention layers too; mamba2 from fla or Hugging Face transformers): config.json is mapped field by field, " +
            "refusing every key Mnemo cannot honour; the weights (fp32, bf16 or fp16, one file or shards) are loaded by name with " +
            "their shapes checked. Then `mnemo generate --checkpoint RUN` and `mnemo eval` run on it.")
        {
            dir, output, tokenizer,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            string name = parse.GetValue(tokenizer)!;
            var kinds = Enum.GetValues<TokenizerKind>().Where(k => Names.Of(k) == name.Trim().ToLowerInvariant()).ToArray();
            if (kinds.Length == 0) throw new MnemoException($"--tokenizer: \"{name}\" is not bytes or gpt2");
            var kind = kinds[0];
            TorchRuntime.Initialise();
            string checkpoint = FlaCheckpoint.Import(parse.GetValue(dir)!, parse.GetValue(output)!, kind);
            Console.WriteLine($"imported {parse.GetValue(dir)} as {checkpoint}");
            return 0;
        }));
        return command;
    }

    public static Command Export()
    {
        var checkpoint = CheckpointOption.Create(
            "gated_delta_net, delta_net, gla and kda models export, with attention layers between them; so do mamba2 models " +
            "without MLPs");
        var output = new Option<string>("--out", "-o")
        {
            Description = "The fla checkpoint folder to write (must not exist or be empty)", Required = true,
        };
        var command = new Command("export",
            "Write a Mnemo checkpoint as an fla / Hugging Face checkpoint folder (config.json and model.safetensors, fp32) that " +
            "fla's GatedDeltaNetForCausalLM, DeltaNetForCausalLM, GLAForCausalLM, KDAForCausalLM or Mamba2ForCausalLM loads with " +
            "from_pretrained.")
        {
            checkpoint, output,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            FlaCheckpoint.Export(parse.GetValue(checkpoint)!, parse.GetValue(output)!);
            Console.WriteLine($"exported {parse.GetValue(checkpoint)} to {parse.GetValue(output)}");
            return 0;
        }));
        return command;
    }
}
