using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Mnemo.IO;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Training;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo generate`: sample token ids from a checkpoint through the streaming path.</summary>
static class GenerateCommand
{
    public static Command Create()
    {
        var checkpoint = CheckpointOption.Create();
        var prompt = new Option<string>("--prompt")
        {
            Description = "Prompt token ids separated by spaces or commas, e.g. \"12 300 45 301\"",
            Required = true,
        };
        var tokens = new Option<int>("--tokens", "-n") { Description = "How many tokens to generate", DefaultValueFactory = _ => 16 };
        var temperature = new Option<double>("--temperature")
        {
            Description = "Sampling temperature; 0 = greedy",
            DefaultValueFactory = _ => 0,
        };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens; 0 = all" };
        var seed = new Option<long>("--seed") { Description = "Seed of the sampler" };
        var command = new Command("generate", "Sample token ids from a checkpoint, " +
            "streaming one token at a time (memory states / KV cache).")
        {
            checkpoint, prompt, tokens, temperature, topK, seed,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var ids = ParseIds(parse.GetValue(prompt)!);
            int count = parse.GetValue(tokens);
            if (count < 1) throw new MnemoException($"--tokens must be at least 1, got {count}");
            var (dir, _, model) = Checkpoint.LoadModel(parse.GetValue(checkpoint)!);
            var clock = Stopwatch.StartNew();
            var output = Generation.Sample(model, ids, count, parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(seed));
            Console.WriteLine(string.Join(' ', output));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{count} tokens after a {ids.Length}-token prompt in {clock.Elapsed.TotalMilliseconds:F0} ms ({dir})"));
            return 0;
        }));
        return command;
    }

    static long[] ParseIds(string text)
    {
        var parts = text.Split([' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]))
                throw new MnemoException($"--prompt: \"{parts[i]}\" is not a token id (expected integers)");
        return ids;
    }
}
