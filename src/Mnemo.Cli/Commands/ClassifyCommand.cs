using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Classification;
using Mnemo.IO;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo classify`: GRU-SVM against GRU-softmax (and any mixer) on a real labelled table, cross-validated.</summary>
static class ClassifyCommand
{
    static readonly string[] HeadNames = [.. Enum.GetValues<HeadKind>().Select(h => Names.Of(h))];

    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c")
        {
            Description = "Classify config file (docs/classification.md). Default: WDBC read as 10 steps of 3, a GRU of 64, " +
                "5 stratified folds",
        };
        var mixers = new Option<string[]>("--mixers")
        {
            Description = "Mixers, one model each (any of `mnemo list`). Default: gru", AllowMultipleArgumentsPerToken = true,
        };
        var heads = new Option<string[]>("--heads")
        {
            Description = $"Output layers: {string.Join(", ", HeadNames)}. Default: both", AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int[]>("--seeds")
        {
            Description = "Seeds (folds, initialisation, batch order); medians and ranges are reported. Default: 1 2 3",
            AllowMultipleArgumentsPerToken = true,
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a field, e.g. --set data.steps=30, --set svm_c=0.5, --set model.rnn.bidirectional=true (repeatable)",
        };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = training.threads, whose 0 is all cores)" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Write classify.json into this folder" };
        var command = new Command("classify",
            "Classify a real labelled table (the Wisconsin Diagnostic Breast Cancer data by default; scripts/setup-datasets.sh) " +
            "with each example's features read as a sequence: Agarap's GRU-SVM (an L2-SVM output layer) against the same GRU " +
            "with softmax, or any mixer. Stratified cross-validation; prints accuracy, precision, recall, false-positive rate " +
            "and training time per fold.")
        {
            config, mixers, heads, seeds, set, threads, outDir,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = ClassifyConfig.Load(parse.GetValue(config), parse.GetValue(set) ?? []);
            var kinds = OptionValues.Mixers(parse.GetValue(mixers), "gru");
            var headKinds = (parse.GetValue(heads) is { Length: > 0 } h ? h : HeadNames).Select(name =>
                Names.Find(HeadNames, name) is var i and >= 0 ? Enum.GetValues<HeadKind>()[i]
                    : throw new MnemoException($"--heads: {Names.Unknown("head", name, HeadNames).Message}")).Distinct().ToArray();
            int[] seedList = parse.GetValue(seeds) is { Length: > 0 } s ? s : [1, 2, 3];
            var data = Datasets.Load(c.Data.Dataset);
            if (data.Note is { } note) Console.WriteLine($"note: {note}");
            TorchRuntime.Initialise(parse.GetValue(threads) is > 0 and var n ? n : c.Training.Threads);
            var runs = ClassifyStudy.Run(c, data, kinds, headKinds, seedList, Console.WriteLine);
            Report.WideWhenRedirected();
            string positive = c.Data.Positive.Length > 0 ? c.Data.Positive : data.Classes[^1];
            var table = new Table().Title($"{data.Name}: {data.Count} examples, {c.Data.Folds}-fold cross-validation, positive class " +
                $"{positive}; median (lowest–highest) over {seedList.Length} seeds")
                .AddColumns("mixer", "head", "parameters", "accuracy %", "precision %", "recall %", "false positives %", "s per fold");
            foreach (var g in runs.GroupBy(r => (r.Mixer, r.Head)))
            {
                string Of(Func<ClassifyRun, double> value, string format) => Statistics.Spread(g.Select(value), format);
                table.AddRow(g.Key.Mixer, g.Key.Head, $"{g.First().Parameters:N0}", Of(r => 100 * r.Accuracy, "F2"),
                    Of(r => 100 * r.Precision, "F1"), Of(r => 100 * r.Recall, "F1"), Of(r => 100 * r.FalsePositiveRate, "F1"),
                    Of(r => r.TrainSeconds, "F1"));
            }
            AnsiConsole.Write(table);
            if (parse.GetValue(outDir) is { } dir)
            {
                Directory.CreateDirectory(dir);
                var json = new JsonObject
                {
                    ["config"] = JsonNode.Parse(c.ToJson()),
                    ["dataset"] = new JsonObject { ["name"] = data.Name, ["source"] = data.Source, ["note"] = data.Note },
                    ["runs"] = JsonSerializer.SerializeToNode(runs, ConfigBinder.WriteOptions),
                };
                JsonOutput.Write(Path.Combine(dir, "classify.json"), json);
            }
            return 0;
        }));
        return command;
    }
}
