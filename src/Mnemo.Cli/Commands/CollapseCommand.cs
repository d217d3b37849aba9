using System.CommandLine;
using System.Globalization;
using Mnemo.Experiments;
using Mnemo.Reporting;
using Mnemo.Runtime;
using Mnemo.Sweeps;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo collapse`: state collapse beyond the training length and Stuffed Mamba's training-free mitigations.</summary>
static class CollapseCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick")
        {
            Description = "Tiny models and a few steps: checks the plumbing in seconds, measures nothing",
        };
        var output = new Option<string?>("--out", "-o")
        {
            Description = "Output folder (a sweep folder: results.jsonl, runs/, report/, plus results.json and the PNGs). " +
                "Default: runs/collapse (runs/collapse-quick with --quick; -xF-F-… appended with --factors)",
        };
        var threads = SweepOptions.Threads();
        var factors = new Option<int[]>("--factors")
        {
            Description = "Evaluation lengths as multiples of the training length L. Default: 1 2 4 8 16 (1 2 4 with --quick)",
            AllowMultipleArgumentsPerToken = true,
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a field of every run, e.g. --set training.steps=3000 (repeatable); other models, lengths or " +
                "mitigations: copy the bundled sweep (configs/sweeps/collapse.json) and run `mnemo sweep -c FILE`",
        };
        var command = new Command("collapse",
            "Train small recurrent models (Mamba-2, Gated DeltaNet) on passkey retrieval at length L = 64, then test them at L × {1, 2, " +
            "4, 8, 16} as trained and with each training-free mitigation of Stuffed Mamba: forget more (log-decay × λ), state " +
            "normalisation (‖S_t‖_F capped per layer at the largest norm seen at t ≤ L) and a sliding window of L tokens (state " +
            "difference). Prints a Markdown table of exact-match accuracy; writes results.json, state_norms.png (state norm against " +
            "position), accuracy.png and the sweep report. Runs the bundled sweep collapse (collapse-quick with --quick): resumable, " +
            "and several processes may share the work.")
        {
            quick, output, threads, factors, set,
        };
        command.SetAction(async (parse, cancel) =>
        {
            await Task.Yield(); // let System.CommandLine's Ctrl+C handler wait on this task (see TrainCommand)
            return CliErrors.Run(parse, () =>
            {
                bool isQuick = parse.GetValue(quick);
                var f = parse.GetValue(factors) is { Length: > 0 } given ? given : null;
                var overrides = parse.GetValue(set) ?? [];
                var sweep = StateCollapse.Sweep(isQuick, f).WithBase(overrides);
                // Other factors are another sweep (other final evaluations): its own folder, not a clash with the default's.
                string outDir = parse.GetValue(output) ?? Path.Combine("runs", (isQuick ? "collapse-quick" : "collapse") +
                    (f is null ? "" : "-x" + string.Join("-", f)));
                TorchRuntime.Initialise(parse.GetValue(threads));
                var runs = sweep.Runs();
                var first = runs[0].Config;
                int trainLength = LengthGrid.TrainLength(sweep);
                var lengths = LengthGrid.EvalLengths(sweep);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"state collapse (bundled sweep {sweep.Name}): {string.Join(", ", runs.Select(r => r.Cell["model"]).Distinct())} at " +
                    $"d_model {first.Model.DModel}, {first.Model.NumLayers} layers, {first.Model.NumHeads} heads; train at L = " +
                    $"{trainLength} on {first.TaskKind} (up to {first.Training.Steps} steps), test at {string.Join(", ", lengths)}; " +
                    $"mitigations: {string.Join(", ", sweep.EvalVariants!.Variants.Select(v => v.Name))}; output {outDir}"));
                return SweepOptions.RunStudy(StateCollapse.Run, sweep, outDir, cancel, parse.GetValue(threads), cells =>
                {
                    Console.WriteLine();
                    Console.WriteLine($"trained at L = {trainLength}; passkey: exact match (all digits), " +
                        $"per-digit accuracy in brackets; MQAR: per-query accuracy");
                    Console.WriteLine(StateCollapse.MarkdownTable(cells, trainLength));
                    foreach (var c in cells)
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{c.Model}: largest state norm per layer at t ≤ L: " +
                            $"{string.Join(", ", c.MaxNormAtTrainLength.Select(x => x.ToString("G3", CultureInfo.InvariantCulture)))}; " +
                            $"at t ≤ {lengths.Max()}: " +
                            $"{string.Join(", ", c.MaxNormAtLongest.Select(x => x.ToString("G3", CultureInfo.InvariantCulture)))}"));
                    return $"{Path.Combine(outDir, StateCollapse.ResultsFile)}, {StateCollapse.NormPlotFile}, " +
                        StateCollapse.AccuracyPlotFile;
                });
            });
        });
        return command;
    }
}
