using System.CommandLine;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Training;

namespace Mnemo.Cli.Commands;

/// <summary>
/// `mnemo convert`: an attention checkpoint as a Liger model (docs/mechanisms.md#liger-attention) — the run config of a
/// fine-tuning run whose model reads the checkpoint's own weights through liger_attention.
/// </summary>
static class ConvertCommand
{
    public static Command Create()
    {
        var checkpoint = CheckpointOption.Create("its attention layers are converted");
        var window = new Option<int>("--window")
        {
            Description = "Sliding window of the converted layers' softmax branch (Liger uses 64)", DefaultValueFactory = _ => 64,
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a field of the fine-tuning run, e.g. --set training.steps=200, or --set training.lora_rank=8 " +
                "to fine-tune low-rank updates only, as Liger does (repeatable)",
        };
        var output = new Option<string>("--out", "-o")
        {
            Description = "Where the fine-tuning run config is written", DefaultValueFactory = _ => "liger.json",
        };
        var command = new Command("convert",
            "Linearise a trained attention model as Liger does (Lan et al. 2025): every attention layer becomes liger_attention, " +
            "reusing its q/k/v/o weights with no new parameters, and the run config of a fine-tuning run that starts from the " +
            "checkpoint's weights (training.init_from) is written; then run `mnemo train -c <that file>`.")
        {
            checkpoint, window, set, output,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            string dir = Path.GetFullPath(Checkpoint.Resolve(parse.GetValue(checkpoint)!));
            var saved = Checkpoint.ReadConfig(dir);
            var model = saved.Model;
            var mixers = model.LayerMixers.Length > 0 ? model.LayerMixers : Enumerable.Repeat(model.Mixer, model.NumLayers).ToArray();
            if (!mixers.Contains(MixerKind.Attention))
                throw new MnemoException($"{dir}: the model has no attention layer to convert (its mixers: " +
                    $"{string.Join(", ", mixers.Distinct().Select(m => Runtime.Names.Of(m)))})");
            var converted = mixers.Select(m => m == MixerKind.Attention ? MixerKind.LigerAttention : m).ToArray();
            var overrides = new List<string>
            {
                model.LayerMixers.Length > 0
                    ? $"model.layer_mixers=[{string.Join(",", converted.Select(m => $"\"{Runtime.Names.Of(m)}\""))}]"
                    : "model.mixer=liger_attention",
                $"model.attention.window={parse.GetValue(window)}",
                $"training.init_from={dir}",
            };
            overrides.AddRange(parse.GetValue(set) ?? []);
            var config = RunConfig.Parse(saved.ToJson(), Path.Combine(dir, Checkpoint.ConfigFile), overrides, savedRun: true);
            Checkpoint.LoadWeightsInto(config.NewModel(), dir);                          // Liger adds no parameter
            string path = parse.GetValue(output)!;
            AtomicFile.WriteAllText(path, config.ToJson() + "\n");
            Console.WriteLine($"{converted.Count(m => m == MixerKind.LigerAttention)} attention layer(s) of {dir} converted to " +
                $"liger_attention (window {parse.GetValue(window)}); the checkpoint's weights load unchanged.");
            Console.WriteLine($"fine-tuning run config: {Path.GetFullPath(path)}");
            Console.WriteLine($"next: mnemo train -c {path}");
            return 0;
        }));
        return command;
    }
}
