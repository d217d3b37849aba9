using System.Globalization;
using Mnemo.Evaluation;
using Mnemo.Models;
using Mnemo.Training;
using Spectre.Console;

namespace Mnemo.Cli;

/// <summary>Live progress bar for a terminal: loss, accuracy and tokens/s in the description.</summary>
sealed class ProgressObserver(ProgressContext ctx) : ITrainingObserver
{
    ProgressTask? _task;
    double _testAccuracy = double.NaN;

    public void Started(long startStep, long totalSteps, string runDir, LanguageModel model)
    {
        AnsiConsole.MarkupLineInterpolated(
            $"[grey]run folder {runDir}; {Report.Parameters(model)}; {TorchSharp.torch.get_num_threads()} threads[/]");
        _task = ctx.AddTask("training", maxValue: totalSteps);
        _task.Value = startStep;
    }

    public void Stepped(StepMetrics m)
    {
        _task!.Value = m.Step;
        string test = double.IsNaN(_testAccuracy) ? "" : $" test {_testAccuracy:P1}";
        _task.Description = string.Create(CultureInfo.InvariantCulture,
            $"step {m.Step} loss {m.Loss:F3} acc {m.TrainAccuracy:P0}{test} {m.TokensPerSecond:N0} tok/s");
    }

    public void Evaluated(long step, EvalResult result) => _testAccuracy = result.Accuracy;

    public void Info(string message) => AnsiConsole.MarkupLineInterpolated($"[grey]{message}[/]");
}

/// <summary>Plain log lines when output is not a terminal (CI, files, pipes).</summary>
sealed class LogObserver(TextWriter output) : ITrainingObserver
{
    long _logEvery = 1;

    public void Started(long startStep, long totalSteps, string runDir, LanguageModel model)
    {
        _logEvery = Math.Max(1, totalSteps / 40);
        output.WriteLine($"training {totalSteps} steps from step {startStep}; run folder {runDir}; " +
            $"{Report.Parameters(model)}; {TorchSharp.torch.get_num_threads()} threads");
    }

    public void Stepped(StepMetrics m)
    {
        if (m.Step % _logEvery != 0) return;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step {m.Step} loss {m.Loss:F4} train_acc {m.TrainAccuracy:F3} lr {m.Lr:E2} {m.TokensPerSecond:F0} " +
            $"tok/s {m.ElapsedSeconds:F1}s"));
    }

    public void Evaluated(long step, EvalResult result) =>
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step} test_accuracy {result.Accuracy:F4}"));

    public void Saved(long step, string checkpointDir) => output.WriteLine($"step {step} checkpoint {checkpointDir}");

    public void Info(string message) => output.WriteLine(message);
}

/// <summary>One line when a run starts and one per evaluation: enough to follow experiments of many runs.</summary>
sealed class RunLineObserver(string label) : ITrainingObserver
{
    public void Started(long startStep, long totalSteps, string runDir, LanguageModel model) =>
        Console.WriteLine($"[{label}] {(startStep > 0 ? $"resuming at step {startStep}" : "starting")}, " +
            $"{model.ParameterCount():N0} parameters");

    public void Evaluated(long step, EvalResult result) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{label}] step {step} test accuracy {result.Accuracy:P1}"));
}

static class Report
{
    /// <summary>"N parameters", and how many of them train when some are frozen (LoRA).</summary>
    public static string Parameters(Mnemo.Models.LanguageModel model)
    {
        long all = model.ParameterCount(), trained = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        return trained == all ? $"{all:N0} parameters" : $"{all:N0} parameters ({trained:N0} trained, the rest frozen)";
    }

    /// <summary>Redirected output has no terminal width; Spectre would assume 80 columns and wrap every cell.</summary>
    public static void WideWhenRedirected()
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 240);
    }

    /// <summary>Per-slice accuracy table (Spectre renders plain text when output is redirected), with a column per
    /// extra metric of the task (bits per byte, repeat surprisal, …): each slice's value, and in the last row the mean
    /// over all examples.</summary>
    public static void EvalTable(EvalResult result)
    {
        WideWhenRedirected();
        var names = result.Slices.Where(s => s.Metrics is not null).SelectMany(s => s.Metrics!.Keys).Distinct().ToList();
        var table = new Table().AddColumns(["seq_len", "num_kv_pairs", "examples", "accuracy", "exact match", .. names]);
        static string Number(double v) => v.ToString("G5", CultureInfo.InvariantCulture);
        static string Percent(double v) => v.ToString("P2", CultureInfo.InvariantCulture);
        string[] Metrics(IReadOnlyDictionary<string, double>? values) =>
            [.. names.Select(n => values is not null && values.TryGetValue(n, out double v) ? Number(v) : "")];
        foreach (var s in result.Slices)
            table.AddRow([s.SeqLen.ToString(CultureInfo.InvariantCulture), s.NumKvPairs.ToString(CultureInfo.InvariantCulture),
                s.Examples.ToString(CultureInfo.InvariantCulture), Percent(s.Accuracy), Percent(s.ExactMatch), .. Metrics(s.Metrics)]);
        table.AddRow(["all", "", result.Examples.ToString(CultureInfo.InvariantCulture), Percent(result.Accuracy),
            Percent(result.ExactMatch), .. Metrics(result.Metrics)]);
        AnsiConsole.Write(table);
    }
}
