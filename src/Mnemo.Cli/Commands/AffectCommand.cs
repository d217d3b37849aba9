using System.CommandLine;
using Mnemo.Experiments;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo affect`: Poria et al. 2017's contextual utterance classifiers on synthetic multimodal videos.</summary>
static class AffectCommand
{
    public static Command Create()
    {
        var study = new StudyOptions(
            "Affect config file (docs/affect-dance.md#affect). Default: 2,000 training videos of 16 utterances, 4 classes, " +
            "text/audio/video features; fc, sc_lstm, bc_lstm, bc_lstm_hier on text alone and on all three",
            "videos, initialisation, batches", "--set classifiers=[fc,bc_lstm], --set videos.stay=0.5, --set training.steps=400",
            "affect.json and affect.png");
        var command = study.AddTo(new Command("affect",
            "Multimodal affect in context (Poria et al., 2017) on synthetic videos whose utterance classes persist, some " +
            "utterances ambiguous and every speaker offset: a non-contextual classifier (fc) against unidirectional and " +
            "bidirectional recurrent ones, early and hierarchical fusion; prints utterance accuracy, also on the ambiguous " +
            "and the clear utterances."));
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = AffectConfig.Load(parse.GetValue(study.Config), study.OverridesOf(parse));
            int[] seedList = study.SeedsOf(parse);
            study.StartTorch(parse, c.Training.Threads);
            var runs = AffectStudy.Run(c, seedList, Console.WriteLine);
            Report.WideWhenRedirected();
            var table = new Table().Title($"{c.Videos.TestVideos} test videos × {c.Videos.Utterances} utterances, {c.Videos.Classes} " +
                    $"classes; accuracy %, median (lowest–highest) over {seedList.Length} seeds")
                .AddColumns("modalities", "classifier", "accuracy", "ambiguous utterances", "clear utterances", "s");
            foreach (var g in runs.GroupBy(r => (r.Modalities, r.Classifier)))
                table.AddRow(g.Key.Modalities, Names.Of(g.Key.Classifier), Statistics.Spread(g.Select(r => 100 * r.Accuracy), "F1"),
                    Percent(g.Select(r => r.AmbiguousAccuracy)), Percent(g.Select(r => r.ClearAccuracy)),
                    Statistics.Spread(g.Select(r => r.Seconds), "F0"));
            AnsiConsole.Write(table);

            static string Percent(IEnumerable<double?> values) =>
                values.OfType<double>().ToArray() is { Length: > 0 } v ? Statistics.Spread(v.Select(x => 100 * x), "F1") : "–";
            if (study.Write(parse, "affect.json", c.ToJson(), "runs", runs) is { } dir)
            {
                AffectPlot.Save(runs, Path.Combine(dir, "affect.png"));
                Console.WriteLine($"wrote {Path.Combine(dir, "affect.png")}");
            }
            return 0;
        }));
        return command;
    }
}
