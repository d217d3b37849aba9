using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Dialog;
using Mnemo.IO;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo dialog`: Visual Dialog's encoders with the discriminative decoder, on generated text-only dialogs.</summary>
static class DialogCommand
{
    static readonly string[] DefaultEncoders = ["answer-prior", "lf-q", "lf-qi", "lf-qh", "lf-qih", "hre-qih", "mn-qih"];

    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c")
        {
            Description = "Dialog config file (docs/dialog.md). Default: 20,000 training and 500 test dialogs of ten rounds, " +
                "100 candidates per question, LSTM readers of width 64, 3,000 steps",
        };
        var mixers = new Option<string[]>("--mixers")
        {
            Description = "Mixers every reader is made of, one model each (any of `mnemo list`). Default: lstm",
            AllowMultipleArgumentsPerToken = true,
        };
        var encoders = new Option<string[]>("--encoders")
        {
            Description = $"Encoders: {string.Join(", ", EncoderSpec.All.Select(e => e.Name))} (q question, i image, h history). " +
                $"Default: {string.Join(" ", DefaultEncoders)}",
            AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int[]>("--seeds")
        {
            Description = "Seeds (initialisation, batch order); medians and ranges are reported. Default: 1 2 3",
            AllowMultipleArgumentsPerToken = true,
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a field, e.g. --set training.steps=6000, --set model.d_model=128, --set data.candidates=50 " +
                "(repeatable)",
        };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = training.threads, whose 0 is all cores)" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Write dialog.json and dialog.png into this folder" };
        var command = new Command("dialog",
            "Visual Dialog (Das et al., 2017) without images: generated scenes whose description plays the image, ten-round " +
            "dialogs whose \"it\" questions need the history, 100 candidate answers per question. Trains the late-fusion, " +
            "hierarchical-recurrent and memory-network encoders with the discriminative decoder (any mixer as their reader) " +
            "and prints MRR, R@1/5/10 and mean rank, also apart for the questions that say \"it\".")
        {
            config, mixers, encoders, seeds, set, threads, outDir,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = DialogConfig.Load(parse.GetValue(config), parse.GetValue(set) ?? []);
            var kinds = OptionValues.Mixers(parse.GetValue(mixers), "lstm");
            var names = parse.GetValue(encoders) is { Length: > 0 } e
                ? e.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries))
                : DefaultEncoders;
            var specs = names.Select(name =>
                {
                    try { return EncoderSpec.Parse(name); }
                    catch (MnemoException ex) { throw new MnemoException($"--encoders: {ex.Message}"); }
                }).Distinct().ToArray();
            int[] seedList = parse.GetValue(seeds) is { Length: > 0 } s ? s : [1, 2, 3];
            TorchRuntime.Initialise(parse.GetValue(threads) is > 0 and var n ? n : c.Training.Threads);
            var data = DialogSets.Build(c.Data);
            int referring = data.Test.Sum(d => d.Rounds.Count(r => r.Refers));
            int questions = data.Test.Length * SceneDialogs.Rounds;
            Console.WriteLine($"{data.Train.Length} training and {data.Test.Length} test dialogs; {questions} test questions, " +
                $"{referring} of them say \"it\"; {data.Words.Count} words, {SceneDialogs.AllAnswers.Count} answers");
            var runs = DialogStudy.Run(c, data, kinds, specs, seedList, Console.WriteLine);
            Report.WideWhenRedirected();
            var table = new Table().Title($"{questions} test questions, {c.Data.Candidates} candidates each; " +
                    $"median (lowest–highest) over {seedList.Length} seeds")
                .AddColumns("mixer", "encoder", "parameters", "MRR", "R@1 %", "R@5 %", "R@10 %", "mean rank", "R@1 \"it\" %",
                    "R@1 others %", "s");
            foreach (var g in runs.GroupBy(r => (r.Mixer, r.Encoder)))
            {
                string Of(Func<DialogRun, double> value, string format) => Statistics.Spread(g.Select(value), format);
                table.AddRow(g.Key.Mixer, g.Key.Encoder, $"{g.First().Parameters:N0}", Of(r => r.All.Mrr, "F3"),
                    Of(r => 100 * r.All.RecallAt1, "F1"), Of(r => 100 * r.All.RecallAt5, "F1"), Of(r => 100 * r.All.RecallAt10, "F1"),
                    Of(r => r.All.MeanRank, "F2"), Of(r => 100 * r.Referring.RecallAt1, "F1"), Of(r => 100 * r.Naming.RecallAt1, "F1"),
                    Of(r => r.TrainSeconds, "F0"));
            }
            AnsiConsole.Write(table);
            if (parse.GetValue(outDir) is { } dir)
            {
                Directory.CreateDirectory(dir);
                var json = new JsonObject
                {
                    ["config"] = JsonNode.Parse(c.ToJson()),
                    ["runs"] = JsonSerializer.SerializeToNode(runs, ConfigBinder.WriteOptions),
                };
                JsonOutput.Write(Path.Combine(dir, "dialog.json"), json);
                DialogPlot.Save(runs, Path.Combine(dir, "dialog.png"));
                Console.WriteLine($"wrote {Path.Combine(dir, "dialog.png")}");
            }
            return 0;
        }));
        return command;
    }
}
