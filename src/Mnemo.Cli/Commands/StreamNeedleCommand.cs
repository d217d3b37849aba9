using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Runtime;
using Spectre.Console;
using static Mnemo.Cli.Commands.OptionValues;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo stream-needle`: the memory bridge on a needle-in-a-stream task (VideoLLaMB's needle in a video haystack).</summary>
static class StreamNeedleCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--models")
        {
            Description = $"Models: {string.Join(", ", StreamNeedle.Models)}. Default: all",
            AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int[]>("--seeds")
        {
            Description = "Seeds (weights and training streams). Default: 1 2 3", AllowMultipleArgumentsPerToken = true,
        };
        var steps = new Option<int>("--steps") { Description = "Training steps of 8 streams", DefaultValueFactory = _ => 600 };
        var frames = new Option<int[]>("--test-frames")
        {
            Description = "Test stream lengths in frames (training streams have 96). Default: 96 384 1536",
            AllowMultipleArgumentsPerToken = true,
        };
        var examples = new Option<int>("--examples") { Description = "Test streams per length", DefaultValueFactory = _ => 200 };
        var output = JsonOutput.Create();
        var command = new Command("stream-needle",
            "A needle-in-a-video-haystack analogue on vector streams (docs/mechanisms.md#scenetilling-and-the-memory-bridge): " +
            "scenes of noisy frames around random directions with one frame replaced by one of 4 needle vectors; after the " +
            "stream the model names the needle. Trains each model on 96-frame streams and scores it on longer ones: the memory " +
            "bridge over SceneTilling's scenes with and without retrieval, over fixed 16-frame segments, and full attention.")
        {
            models, seeds, steps, frames, examples, output,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = new StreamNeedleConfig
            {
                Steps = Positive(parse.GetValue(steps), "--steps"),
                TestExamples = Positive(parse.GetValue(examples), "--examples"),
                TestFrames = parse.GetValue(frames) is { Length: > 0 } f
                    ? [.. f.Select(v => Positive(v, "--test-frames"))]
                    : new StreamNeedleConfig().TestFrames,
            };
            var chosen = parse.GetValue(models) is { Length: > 0 } m ? m : StreamNeedle.Models;
            foreach (var name in chosen)
                if (!StreamNeedle.Models.Contains(name))
                    throw new MnemoException($"--models: unknown model \"{name}\"; allowed: {string.Join(", ", StreamNeedle.Models)}");
            int[] seedList = parse.GetValue(seeds) is { Length: > 0 } s ? s : [1, 2, 3];
            TorchRuntime.Initialise(1);
            var scores = new List<StreamNeedleScore>();
            foreach (var model in chosen)
                foreach (int seed in seedList)
                    scores.AddRange(StreamNeedle.Run(model, seed, c, Console.WriteLine));
            Report.WideWhenRedirected();
            var table = new Table().AddColumns(["model", .. c.TestFrames.Select(n => $"{n} frames")]);
            foreach (var model in chosen)
                table.AddRow([model, .. c.TestFrames.Select(n =>
                {
                    var v = scores.Where(x => x.Model == model && x.Frames == n).Select(x => x.Accuracy).Order().ToArray();
                    return $"{Statistics.Median(v).ToString("P1", CultureInfo.InvariantCulture)} ({v[0]:P1}–{v[^1]:P1})";
                })]);
            AnsiConsole.Write(table);
            if (parse.GetValue(output) is { } file)
            {
                var json = new JsonObject { ["scores"] = JsonSerializer.SerializeToNode(scores, ConfigBinder.WriteOptions) };
                JsonOutput.Write(file, json);
            }
            return 0;
        }));
        return command;
    }
}
