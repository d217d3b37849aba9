using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Models;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo recoding`: test-time gradient correction of an LSTM's state on noisy input.</summary>
static class RecodingCommand
{
    public static Command Create()
    {
        var d = new RecodingStudyConfig();
        var corpus = new Option<string>("--corpus")
        {
            Description = "Corpus name or text file, read as bytes (a corpus not set up falls back to generated text)",
            DefaultValueFactory = _ => d.Corpus,
        };
        var seeds = new Option<int[]>("--seeds") { Description = "Seeds. Default: 1 2 3", AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int>("--steps") { Description = "Training steps of each LSTM", DefaultValueFactory = _ => d.Steps };
        var hidden = new Option<int>("--hidden") { Description = "LSTM units per layer", DefaultValueFactory = _ => d.Hidden };
        var layers = new Option<int>("--layers") { Description = "LSTM layers", DefaultValueFactory = _ => d.Layers };
        var noise = new Option<double[]>("--noise")
        {
            Description = $"Probabilities that an input byte is replaced by a random character. Default: {string.Join(" ", d.Noise)}",
            AllowMultipleArgumentsPerToken = true,
        };
        var stepSizes = new Option<double[]>("--step-sizes")
        {
            Description = $"Recoding step sizes α. Default: {string.Join(" ", d.StepSizes)}", AllowMultipleArgumentsPerToken = true,
        };
        var recodeSteps = new Option<int>("--recode-steps")
        {
            Description = "Gradient steps per token", DefaultValueFactory = _ => d.RecodeSteps,
        };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = all cores)" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Write recoding.json into this folder" };
        var command = new Command("recoding",
            "Recoding latent representations (docs/recoding.md): a byte-level LSTM language model trained on clean text reads " +
            "held-out text whose input bytes are randomly replaced, and predicts the clean next byte, plain and with its hidden " +
            "and cell states corrected after every byte by gradient steps on its surprisal at the byte that arrives, or on the " +
            "entropy of its prediction. Prints bits per byte for every noise level, signal and step size.")
        {
            corpus, seeds, steps, hidden, layers, noise, stepSizes, recodeSteps, threads, outDir,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = new RecodingStudyConfig
            {
                Corpus = parse.GetValue(corpus)!, Steps = parse.GetValue(steps), Hidden = parse.GetValue(hidden),
                Layers = parse.GetValue(layers), RecodeSteps = parse.GetValue(recodeSteps),
                Noise = parse.GetValue(noise) is { Length: > 0 } n ? n : d.Noise,
                StepSizes = parse.GetValue(stepSizes) is { Length: > 0 } a ? a : d.StepSizes,
            };
            c.Validate();
            int[] seedList = parse.GetValue(seeds) is { Length: > 0 } s ? s : [1, 2, 3];
            TorchRuntime.Initialise(parse.GetValue(threads));
            var runs = seedList.Select(seed => RecodingStudy.Run(c, seed, Console.WriteLine)).ToList();
            Report.WideWhenRedirected();
            var table = new Table().Title($"held-out bits per byte of the clean next byte ({runs[0].Corpus}; median " +
                $"(lowest–highest) over {runs.Count} seeds)")
                .AddColumns("noise", "signal", "α", "bits per byte", "change vs plain", "signal before → after");
            var all = runs.SelectMany(r => r.Points.Select(p => (r.Seed, p))).ToArray();
            var plain = all.Where(x => x.p.Signal == "none").ToDictionary(x => (x.Seed, x.p.Noise), x => x.p.BitsPerByte);
            foreach (var group in all.GroupBy(x => (x.p.Noise, x.p.Signal, x.p.StepSize)))
            {
                var points = group.ToArray();
                table.AddRow($"{group.Key.Noise:F2}", group.Key.Signal, group.Key.Signal == "none" ? "–" : $"{group.Key.StepSize:G3}",
                    Statistics.Spread(points.Select(x => x.p.BitsPerByte), "F3"),
                    group.Key.Signal == "none" ? "–"
                        : Statistics.Spread(points.Select(x => x.p.BitsPerByte - plain[(x.Seed, x.p.Noise)]), "+0.000;-0.000"),
                    group.Key.Signal == "none" ? "–"
                        : $"{Statistics.Median(points.Select(x => x.p.SignalBefore)):F3} → " +
                          $"{Statistics.Median(points.Select(x => x.p.SignalAfter)):F3}");
            }
            AnsiConsole.Write(table);
            if (parse.GetValue(outDir) is { } dir)
            {
                Directory.CreateDirectory(dir);
                var json = new JsonObject
                {
                    ["config"] = JsonSerializer.SerializeToNode(c, ConfigBinder.WriteOptions),
                    ["runs"] = JsonSerializer.SerializeToNode(runs, ConfigBinder.WriteOptions),
                };
                JsonOutput.Write(Path.Combine(dir, "recoding.json"), json);
            }
            return 0;
        }));
        return command;
    }
}
