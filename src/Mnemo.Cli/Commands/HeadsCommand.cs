using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Runtime;
using Mnemo.Training;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo heads`: retrieval scores of a trained model's attention heads and the masking ablation.</summary>
static class HeadsCommand
{
    public static Command Create()
    {
        var checkpoint = CheckpointOption.Create("the model needs attention layers");
        var top = new Option<int>("--top")
        {
            Description = "Heads to mask: the top-scoring ones, then as many random ones",
            DefaultValueFactory = _ => 2,
        };
        var draws = new Option<int>("--draws") { Description = "Random sets of heads to mask", DefaultValueFactory = _ => 5 };
        var examples = new Option<int>("--examples")
        {
            Description = "Test examples the scores are measured on (the ablation uses the whole test set)",
            DefaultValueFactory = _ => 512,
        };
        var seed = new Option<int>("--seed") { Description = "Seed of the random head sets", DefaultValueFactory = _ => 0 };
        var set = new Option<string[]>("--set") { Description = "Override a task field, e.g. --set task.test_seed=7 (repeatable)" };
        var outDir = new Option<string?>("--out") { Description = "Where heads.json and heads.png go. Default: <checkpoint>/heads" };
        var command = new Command("heads",
            "Retrieval heads (Wu et al. 2024): each attention head's retrieval score on the checkpoint's test set (how often its " +
            "strongest attention falls on an earlier copy of the token the model copies), as a table and a heatmap; then the " +
            "task's score with the top heads masked against random heads masked.")
        {
            checkpoint, top, draws, examples, seed, set, outDir,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            if (parse.GetValue(examples) < 1) throw new MnemoException($"--examples {parse.GetValue(examples)}: must be at least 1");
            if (parse.GetValue(draws) < 0) throw new MnemoException($"--draws {parse.GetValue(draws)}: must be at least 0");
            var (dir, config, model) = Checkpoint.LoadModel(parse.GetValue(checkpoint)!, parse.GetValue(set));
            var test = config.Task.TestBatches();
            var scores = RetrievalHeads.Score(model, test, parse.GetValue(examples));
            Console.WriteLine($"checkpoint {dir}: {scores.CopyEvents} copy events in up to {parse.GetValue(examples)} test examples");
            Report.WideWhenRedirected();
            int heads = scores.Score.GetLength(1);
            var table = new Table().AddColumns(["layer", .. Enumerable.Range(0, heads).Select(h => $"head {h}")]);
            for (int l = 0; l < scores.Layers.Length; l++)
                table.AddRow([scores.Layers[l].ToString(CultureInfo.InvariantCulture),
                    .. Enumerable.Range(0, heads).Select(h => scores.Score[l, h].ToString("P1", CultureInfo.InvariantCulture))]);
            AnsiConsole.Write(table);

            var ablation = RetrievalHeads.Ablate(model, config.Task, test, scores, parse.GetValue(top), parse.GetValue(draws),
                parse.GetValue(seed));
            string metric = config.Task.ReportedScore();
            var results = new Table().AddColumns("masked", "heads (layer.head)", metric);
            foreach (var a in ablation)
                results.AddRow(a.Name, string.Join(" ", a.Masked.Select(m => $"{m.Layer}.{m.Head}")),
                    a.Score.ToString("P2", CultureInfo.InvariantCulture));
            AnsiConsole.Write(results);

            string folder = parse.GetValue(outDir) ?? Path.Combine(dir, "heads");
            Directory.CreateDirectory(folder);
            var json = new JsonObject
            {
                ["checkpoint"] = dir,
                ["copy_events"] = scores.CopyEvents,
                ["layers"] = new JsonArray([.. scores.Layers.Select(l => (JsonNode)l)]),
                ["scores"] = new JsonArray([.. Enumerable.Range(0, scores.Layers.Length).Select(l =>
                    (JsonNode)new JsonArray([.. Enumerable.Range(0, heads).Select(h => (JsonNode)scores.Score[l, h])]))]),
                ["metric"] = metric,
                ["ablation"] = new JsonArray([.. ablation.Select(a => (JsonNode)new JsonObject
                {
                    ["name"] = a.Name,
                    ["masked"] = new JsonArray([.. a.Masked.Select(m => (JsonNode)new JsonArray(m.Layer, m.Head))]),
                    ["score"] = a.Score,
                })]),
            };
            var indented = new JsonSerializerOptions { WriteIndented = true };
            AtomicFile.WriteAllText(Path.Combine(folder, "heads.json"), json.ToJsonString(indented));
            RetrievalHeadsPlot.Save(scores, $"retrieval score per head ({scores.CopyEvents} copy events)",
                Path.Combine(folder, "heads.png"));
            Console.WriteLine($"wrote {Path.Combine(folder, "heads.json")} and heads.png");
            return 0;
        }));
        return command;
    }
}
