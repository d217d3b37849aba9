using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Memory.Episodic;
using Mnemo.Runtime;
using Mnemo.Training;
using Spectre.Console;
using static Mnemo.Cli.Commands.OptionValues;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo episodic`: EM-LLM's episodic memory on a trained attention model, against full attention and a window.</summary>
static class EpisodicCommand
{
    public static Command Create()
    {
        var checkpoint = CheckpointOption.Create("the model needs attention layers");
        var set = new Option<string[]>("--set")
        {
            Description = "Override a task field, e.g. --set 'task.test=[{\"seq_len\":2048,\"num_examples\":200,\"depths\":\"even\"}]' " +
                "(repeatable)",
        };
        var with = new Option<string[]>("--with")
        {
            Description = "Set an EM-LLM field, e.g. --with memory_tokens=32 --with refinement=modularity (repeatable); fields: " +
                string.Join(", ", ConfigBinder.Keys(typeof(EpisodicConfig))) + " (docs/mechanisms.md#em-llm-episodic-memory)",
        };
        var variants = new Option<string[]>("--variants")
        {
            Description = $"Ways to read each test slice: {string.Join(", ", EpisodicRecall.Variants)}. Default: all three",
            AllowMultipleArgumentsPerToken = true,
        };
        var rows = new Option<int>("--rows") { Description = "Examples per batch", DefaultValueFactory = _ => 50 };
        var output = JsonOutput.Create();
        var command = new Command("episodic",
            "EM-LLM (Fountas et al. 2024) on a trained attention model, without retraining: the test set is read in execution " +
            "blocks; the model's surprise cuts the context into events, and each block attends to the first tokens, a local " +
            "window and the events that match it best. Prints exact match, keys read per query and time per token for full " +
            "attention, the window alone and EM-LLM, per test length.")
        {
            checkpoint, set, with, variants, rows, output,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            if (parse.GetValue(rows) < 1) throw new MnemoException($"--rows {parse.GetValue(rows)}: must be at least 1");
            var root = (JsonObject)JsonNode.Parse(ConfigBinder.ToJson(new EpisodicConfig()))!;
            ConfigBinder.ApplyOverrides<EpisodicConfig>(root, parse.GetValue(with) ?? [], "--with");
            var config = ConfigBinder.Bind<EpisodicConfig>(root, "--with");
            string[] chosen = parse.GetValue(variants) is { Length: > 0 } given ? given : EpisodicRecall.Variants;
            var (dir, run, model) = Checkpoint.LoadModel(parse.GetValue(checkpoint)!, parse.GetValue(set));
            Console.WriteLine($"checkpoint {dir}; EM-LLM {ConfigBinder.ToJson(config).ReplaceLineEndings(" ")}");
            var scores = EpisodicRecall.Run(model, run.Task, config, chosen, parse.GetValue(rows), s =>
                Console.WriteLine($"{s.Variant} at {s.SeqLen}: exact match {Percent(s.ExactMatch)}, {Number(s.KeysPerQuery)} keys " +
                    $"per query, {s.MsPerToken:F3} ms per token"));
            Report.WideWhenRedirected();
            var table = new Table().AddColumns("variant", "seq_len", "examples", "exact match", "accuracy", "keys/query", "ms/token",
                "events/example");
            foreach (var s in scores)
                table.AddRow(s.Variant, s.SeqLen.ToString(CultureInfo.InvariantCulture), s.Examples.ToString(CultureInfo.InvariantCulture),
                    Percent(s.ExactMatch), Percent(s.Accuracy), Number(s.KeysPerQuery),
                    s.MsPerToken.ToString("F3", CultureInfo.InvariantCulture),
                    Number(s.EventsPerExample));
            AnsiConsole.Write(table);
            if (parse.GetValue(output) is { } file)
            {
                var json = new JsonObject
                {
                    ["checkpoint"] = dir,
                    ["episodic"] = JsonNode.Parse(ConfigBinder.ToJson(config)),
                    ["scores"] = JsonSerializer.SerializeToNode(scores, ConfigBinder.WriteOptions),
                };
                JsonOutput.Write(file, json);
            }
            return 0;
        }));
        return command;
    }

    static string Number(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
