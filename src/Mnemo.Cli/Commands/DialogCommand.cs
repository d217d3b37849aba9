using System.CommandLine;
using Mnemo.Dialog;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo dialog`: Visual Dialog's encoders with the discriminative decoder, on generated text-only dialogs.</summary>
static class DialogCommand
{
    static readonly string[] DefaultEncoders = ["answer-prior", "lf-q", "lf-qi", "lf-qh", "lf-qih", "hre-qih", "mn-qih"];

    public static Command Create()
    {
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
        var study = new StudyOptions(
            "Dialog config file (docs/dialog.md). Default: 20,000 training and 500 test dialogs of ten rounds, 100 candidates " +
            "per question, LSTM readers of width 64, 3,000 steps",
            "initialisation, batch order", "--set training.steps=6000, --set model.d_model=128, --set data.candidates=50",
            "dialog.json and dialog.png");
        var command = study.AddTo(new Command("dialog",
            "Visual Dialog (Das et al., 2017) without images: generated scenes whose description plays the image, ten-round " +
            "dialogs whose \"it\" questions need the history, 100 candidate answers per question. Trains the late-fusion, " +
            "hierarchical-recurrent and memory-network encoders with the discriminative decoder (any mixer as their reader) " +
            "and prints MRR, R@1/5/10 and mean rank, also apart for the questions that say \"it\".")
        {
            mixers, encoders,
        });
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = DialogConfig.Load(parse.GetValue(study.Config), study.OverridesOf(parse));
            var kinds = OptionValues.Mixers(parse.GetValue(mixers), "lstm");
            var names = parse.GetValue(encoders) is { Length: > 0 } e
                ? e.SelectMany(x => x.Split(',', StringSplitOptions.RemoveEmptyEntries))
                : DefaultEncoders;
            var specs = names.Select(name =>
                {
                    try { return EncoderSpec.Parse(name); }
                    catch (MnemoException ex) { throw new MnemoException($"--encoders: {ex.Message}"); }
                }).Distinct().ToArray();
            int[] seedList = study.SeedsOf(parse);
            study.StartTorch(parse, c.Training.Threads);
            var data = DialogSets.Build(c.Data);
            int referring = data.Test.Sum(d => d.Rounds.Count(r => r.Refers));
            int questions = data.Test.Length * SceneDialogs.Rounds;
            Console.WriteLine($"{data.Train.Length} training and {data.Test.Length} test dialogs; {questions} test questions, " +
                $"{referring} of them say \"it\"; {data.Words.Count - 1} words, {SceneDialogs.AllAnswers.Count} answers");
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
            if (study.Write(parse, "dialog.json", c.ToJson(), "runs", runs) is { } dir)
            {
                DialogPlot.Save(runs, Path.Combine(dir, "dialog.png"));
                Console.WriteLine($"wrote {Path.Combine(dir, "dialog.png")}");
            }
            return 0;
        }));
        return command;
    }
}
