using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo grid-forecast`: the ConvLSTM encoding-forecasting network against FC-LSTM on moving shapes.</summary>
static class GridForecastCommand
{
    static readonly string[] ModelNames = [.. Enum.GetValues<GridModel>().Select(m => Names.Of(m))];

    public static Command Create()
    {
        var d = new GridForecastConfig();
        var models = new Option<string[]>("--models")
        {
            Description = $"Models: {string.Join(", ", ModelNames)}. Default: all (the persistence baseline is always scored)",
            AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int[]>("--seeds") { Description = "Seeds. Default: 1 2 3", AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int>("--steps") { Description = "Training steps per model", DefaultValueFactory = _ => d.Steps };
        var lr = new Option<double>("--lr") { Description = "Adam's learning rate", DefaultValueFactory = _ => d.Lr };
        var batch = new Option<int>("--batch") { Description = "Sequences per step", DefaultValueFactory = _ => d.Batch };
        var size = new Option<int>("--size") { Description = "Side of the grid (the paper: 64)", DefaultValueFactory = _ => d.Size };
        var shapes = new Option<int>("--shapes")
        {
            Description = "Moving shapes per training sequence", DefaultValueFactory = _ => d.Shapes,
        };
        var testShapes = new Option<int>("--test-shapes")
        {
            Description = "Shapes per sequence in the second, out-of-domain test set", DefaultValueFactory = _ => d.TestShapes,
        };
        var hidden = new Option<int>("--hidden") { Description = "ConvLSTM channels per layer", DefaultValueFactory = _ => d.Hidden };
        var kernel = new Option<int>("--kernel") { Description = "ConvLSTM kernel side (odd)", DefaultValueFactory = _ => d.Kernel };
        var layers = new Option<int>("--layers")
        {
            Description = "Layers of each encoder and forecaster", DefaultValueFactory = _ => d.Layers,
        };
        var fcHidden = new Option<int>("--fc-hidden") { Description = "FC-LSTM units per layer", DefaultValueFactory = _ => d.FcHidden };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = all cores)" };
        var outDir = new Option<string?>("--out", "-o")
        {
            Description = "Write grid-forecast.json and frames.png (a test sequence and each model's forecast) into this folder",
        };
        var command = new Command("grid-forecast",
            "Grid forecasting on moving shapes (docs/grid-forecast.md): the ConvLSTM encoding-forecasting network of Shi et al. " +
            "(2015) and the FC-LSTM baseline learn to predict the next 10 binary frames from 10, and are scored by the paper's " +
            "cross-entropy per sequence and by the overlap (IoU) of the predicted pixels, on test sequences with the training " +
            "number of shapes and with one more, against persistence (the last frame repeated).")
        {
            models, seeds, steps, lr, batch, size, shapes, testShapes, hidden, kernel, layers, fcHidden, threads, outDir,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var chosen = (parse.GetValue(models) is { Length: > 0 } ms ? ms : ModelNames).Select(name =>
                Names.Find(ModelNames, name) is var i and >= 0 ? Enum.GetValues<GridModel>()[i]
                    : throw new MnemoException($"--models: {Names.Unknown("model", name, ModelNames).Message}"))
                .ToArray();
            var c = new GridForecastConfig
            {
                Steps = parse.GetValue(steps), Lr = parse.GetValue(lr), Batch = parse.GetValue(batch), Size = parse.GetValue(size),
                Shapes = parse.GetValue(shapes),
                TestShapes = parse.GetValue(testShapes), Hidden = parse.GetValue(hidden), Kernel = parse.GetValue(kernel),
                Layers = parse.GetValue(layers), FcHidden = parse.GetValue(fcHidden),
            };
            c.Validate();
            int[] seedList = parse.GetValue(seeds) is { Length: > 0 } s ? s : [1, 2, 3];
            TorchRuntime.Initialise(parse.GetValue(threads));
            var runs = new List<GridForecastRun> { GridForecast.Persistence(c) };
            foreach (var model in chosen)
                foreach (int seed in seedList)
                {
                    var run = GridForecast.Run(model, seed, c, Console.WriteLine);
                    Console.WriteLine($"{run.Model} seed {seed}: cross-entropy per sequence {run.Scores[0].CrossEntropy:F1} " +
                        $"in {run.Seconds:F0} s");
                    runs.Add(run);
                }
            Report.WideWhenRedirected();
            var table = new Table().AddColumns("model", "parameters", "seeds", "test shapes", "cross-entropy / sequence", "frame 1",
                $"frame {c.OutputFrames}", "IoU");
            foreach (var group in runs.GroupBy(r => r.Model))
                for (int t = 0; t < group.First().Scores.Length; t++)
                {
                    var scores = group.Select(r => r.Scores[t]).ToArray();
                    table.AddRow(group.Key, $"{group.First().Parameters:N0}", $"{scores.Length}", $"{scores[0].Shapes}",
                        Statistics.Spread(scores.Select(x => x.CrossEntropy), "F1"),
                        Statistics.Spread(scores.Select(x => x.CrossEntropyPerFrame[0]), "F1"),
                        Statistics.Spread(scores.Select(x => x.CrossEntropyPerFrame[^1]), "F1"),
                        Statistics.Spread(scores.Select(x => 100 * x.Iou), "F1") + "%");
                }
            AnsiConsole.Write(table);
            if (parse.GetValue(outDir) is { } dir)
            {
                Directory.CreateDirectory(dir);
                GridForecastPlot.Frames(c, runs, Path.Combine(dir, "frames.png"));
                var json = new JsonObject
                {
                    ["config"] = JsonSerializer.SerializeToNode(c, ConfigBinder.WriteOptions),
                    ["runs"] = JsonSerializer.SerializeToNode(runs, ConfigBinder.WriteOptions),
                };
                JsonOutput.Write(Path.Combine(dir, "grid-forecast.json"), json);
            }
            return 0;
        }));
        return command;
    }

}
