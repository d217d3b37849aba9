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
        var mixers = new Option<string[]>("--mixers")
        {
            Description = "Mixers, one model each (any of `mnemo list`). Default: gru", AllowMultipleArgumentsPerToken = true,
        };
        var heads = new Option<string[]>("--heads")
        {
            Description = $"Output layers: {string.Join(", ", HeadNames)}. Default: both", AllowMultipleArgumentsPerToken = true,
        };
        var study = new StudyOptions(
            "Classify config file (docs/classification.md). Default: WDBC read as 10 steps of 3, a GRU of 64, 5 stratified folds",
            "folds, initialisation, batch order", "--set data.steps=30, --set svm_c=0.5, --set model.rnn.bidirectional=true",
            "classify.json");
        var command = study.AddTo(new Command("classify",
            "Classify a real labelled table (the Wisconsin Diagnostic Breast Cancer data by default; scripts/setup-datasets.sh) " +
            "with each example's features read as a sequence: Agarap's GRU-SVM (an L2-SVM output layer) against the same GRU " +
            "with softmax, or any mixer. Stratified cross-validation; prints accuracy, precision, recall, false-positive rate " +
            "and training time per fold.")
        {
            mixers, heads,
        });
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = ClassifyConfig.Load(parse.GetValue(study.Config), study.OverridesOf(parse));
            var kinds = OptionValues.Mixers(parse.GetValue(mixers), "gru");
            var headKinds = (parse.GetValue(heads) is { Length: > 0 } h ? h : HeadNames).Select(name =>
                Names.Find(HeadNames, name) is var i and >= 0 ? Enum.GetValues<HeadKind>()[i]
                    : throw new MnemoException($"--heads: {Names.Unknown("head", name, HeadNames).Message}")).Distinct().ToArray();
            int[] seedList = study.SeedsOf(parse);
            var data = Datasets.Load(c.Data.Dataset);
            if (data.Note is { } note) Console.WriteLine($"note: {note}");
            study.StartTorch(parse, c.Training.Threads);
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
            study.Write(parse, "classify.json", () => new JsonObject
            {
                ["config"] = JsonNode.Parse(c.ToJson()),
                ["dataset"] = new JsonObject { ["name"] = data.Name, ["source"] = data.Source, ["note"] = data.Note },
                ["runs"] = JsonSerializer.SerializeToNode(runs, ConfigBinder.WriteOptions),
            });
            return 0;
        }));
        return command;
    }
}
