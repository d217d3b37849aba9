using System.CommandLine;
using System.Text.Json;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Cli.Commands;

static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = CheckpointOption.Create();
        var set = new Option<string[]>("--set")
        {
            Description = "Override a field of the saved run, e.g. --set task.test_seed=7, or --set model.rnn.adc_bits=4 to read " +
                "the same weights through an ADC (repeatable)",
        };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON instead of a table" };
        var streamed = new Option<bool>("--streamed")
        {
            Description = "Feed every test sequence one token at a time through the streaming path instead of the whole pass " +
                "(for a model whose whole pass reads ahead within a segment: model.segments.kind hmt)",
        };
        var command = new Command("eval", "Evaluate a checkpoint on its task's test set (optionally changed with --set).")
        {
            checkpoint, set, json, streamed,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var (dir, config, model) = Checkpoint.LoadModel(parse.GetValue(checkpoint)!, parse.GetValue(set));
            var test = config.Task.TestBatches();
            var result = MqarEvaluator.Evaluate(model, test, task: config.Task,
                read: parse.GetValue(streamed) ? inputs => MqarEvaluator.Streamed(model, inputs) : null);
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(result, ConfigBinder.WriteOptions));
            else
            {
                Console.WriteLine($"checkpoint {dir}");
                Report.EvalTable(result);
            }
            return 0;
        }));
        return command;
    }
}
