using System.CommandLine;
using System.Globalization;
using Mnemo.Experiments;
using Mnemo.Layers;
using Mnemo.Runtime;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo collapse`: state collapse beyond the training length and Stuffed Mamba's training-free mitigations.</summary>
public static class CollapseCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick")
        {
            Description = "Tiny models and a few steps: checks the plumbing in seconds, measures nothing",
        };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Output folder. Default: runs/collapse (runs/collapse-quick with --quick)",
        };
        var threads = new Option<int>("--threads") { Description = "libtorch threads (0 = all cores)" };
        var mixers = new Option<string[]>("--mixers")
        {
            Description = "Models to train (matrix memories), e.g. mamba2 gated_delta_net. Default: mamba2 gated_delta_net",
            AllowMultipleArgumentsPerToken = true,
        };
        var steps = new Option<int?>("--steps")
        {
            Description = "Training steps per model (default 300; early stop at 99% validation accuracy)",
        };
        var factors = new Option<int[]>("--factors")
        {
            Description = "Evaluation lengths as multiples of the training length L. Default: 1 2 4 8 16",
            AllowMultipleArgumentsPerToken = true,
        };
        var lambdas = new Option<double[]>("--forget")
        {
            Description = "Forget-more multipliers λ ≥ 1 on the log-decay. Default: 2 4",
            AllowMultipleArgumentsPerToken = true,
        };
        var caps = new Option<double[]>("--norm-cap")
        {
            Description = "State-norm caps as multiples m of the largest norm seen at t ≤ L (τ = m × max, per layer). Default: 1 0.5",
            AllowMultipleArgumentsPerToken = true,
        };
        var examples = new Option<int?>("--examples") { Description = "Test examples per evaluation length (default 100)" };
        var length = new Option<int?>("--train-length")
        {
            Description = "Training length L (default 64); the window mitigation uses r = L",
        };
        var width = new Option<int?>("--d-model") { Description = "Model width (default 64)" };
        var batch = new Option<int?>("--batch") { Description = "Training batch size (default 64)" };
        var command = new Command("collapse",
            "Train small recurrent models (Mamba-2, Gated DeltaNet) on passkey retrieval at length L = 64, then test them at L × {1, 2, " +
            "4, 8, 16} as trained and with each training-free mitigation of Stuffed Mamba: forget more (log-decay × λ), state " +
            "normalisation (‖S_t‖_F capped per layer at the largest norm seen at t ≤ L) and a sliding window of L tokens (state " +
            "difference). Prints a Markdown table of exact-match accuracy; writes results.json, state_norms.png (state norm against " +
            "position) and accuracy.png. Interrupted runs resume.")
        {
            quick, output, threads, mixers, steps, factors, lambdas, caps, examples, length, width, batch,
        };
        command.SetAction(async (parse, cancel) =>
        {
            await Task.Yield(); // let System.CommandLine's Ctrl+C handler wait on this task (see TrainCommand)
            return CliErrors.Run(parse, () =>
            {
                var settings = parse.GetValue(quick) ? StateCollapseSettings.Quick : StateCollapseSettings.Default;
                var training = settings.Training;
                if (parse.GetValue(mixers) is { Length: > 0 } m) training = training with { Mixers = m.Select(ParseMixer).ToArray() };
                if (parse.GetValue(steps) is { } s) training = training with { Steps = s };
                if (parse.GetValue(factors) is { Length: > 0 } f) training = training with { EvalFactors = f };
                if (parse.GetValue(examples) is { } e) training = training with { EvalExamples = e };
                if (parse.GetValue(length) is { } len) training = training with { TrainLength = len };
                if (parse.GetValue(width) is { } d) training = training with { DModel = d };
                if (parse.GetValue(batch) is { } bs) training = training with { BatchSize = bs };
                settings = settings with { Training = training };
                if (parse.GetValue(lambdas) is { Length: > 0 } l) settings = settings with { ForgetScales = l };
                if (parse.GetValue(caps) is { Length: > 0 } margins) settings = settings with { NormCapMargins = margins };
                string outDir = parse.GetValue(output) ?? Path.Combine("runs", settings.Name == "quick" ? "collapse-quick" : "collapse");
                TorchRuntime.Initialise(parse.GetValue(threads));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"state collapse ({settings.Name}): {string.Join(", ", training.Mixers)} at d_model {training.DModel}, " +
                    $"{training.NumLayers} layers, {training.NumHeads} heads; train at L = {training.TrainLength} on " +
                    $"{string.Join(" and ", training.Tasks)} (up to {training.Steps} steps), test at " +
                    $"{string.Join(", ", training.EvalLengths)} ({training.EvalExamples} examples each); mitigations: forget λ ∈ {{" +
                    $"{string.Join(", ", settings.ForgetScales)}}}, state norm, window r = {settings.WindowTokens}; output {outDir}"));
                IReadOnlyList<CollapseCell> cells;
                try
                {
                    cells = StateCollapse.Run(settings, outDir, (config, _) => new RunLineObserver(config.Description), Console.WriteLine,
                        cancel);
                }
                catch (OperationCanceledException ex)
                {
                    Console.Error.WriteLine(ex.Message);
                    return 130;
                }
                Console.WriteLine();
                Console.WriteLine($"trained at L = {training.TrainLength}; passkey: exact match (all digits), " +
                    $"per-digit accuracy in brackets; MQAR: per-query accuracy");
                Console.WriteLine(StateCollapse.MarkdownTable(cells, settings));
                foreach (var c in cells)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{c.Model}: largest state norm per layer at t ≤ L: " +
                        $"{string.Join(", ", c.MaxNormAtTrainLength.Select(x => x.ToString("G3", CultureInfo.InvariantCulture)))}; at t " +
                        $"≤ {training.EvalLengths.Max()}: " +
                        $"{string.Join(", ", c.MaxNormAtLongest.Select(x => x.ToString("G3", CultureInfo.InvariantCulture)))}"));
                Console.WriteLine($"wrote {Path.Combine(outDir, StateCollapse.ResultsFile)}, " +
                    $"{StateCollapse.NormPlotFile} and {StateCollapse.AccuracyPlotFile}");
                return 0;
            });
        });
        return command;
    }

    static MixerKind ParseMixer(string name) =>
        Enum.TryParse<MixerKind>(name.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var kind)
            ? kind
            : throw new MnemoException($"--mixers: unknown model \"{name}\" (try mamba2, gla, gated_delta_net, delta_net, retnet)");
}
