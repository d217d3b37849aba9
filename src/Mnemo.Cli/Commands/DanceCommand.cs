using System.CommandLine;
using Mnemo.Experiments;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo dance`: Tang et al. 2018's music-to-dance generator on synthetic beat-aligned dances.</summary>
static class DanceCommand
{
    public static Command Create()
    {
        var study = new StudyOptions(
            "Dance config file (docs/affect-dance.md#dance). Default: 800 training clips of 8 s at 25 fps, four dances; " +
            "2-layer LSTM, Gated DeltaNet and attention generators of width 64, with and without the temporal indexes",
            "dances, initialisation, batches", "--set mixers=[lstm], --set temporal_indexes=[false], --set training.steps=400",
            "dance.json and a plot of a generated dance against the truth");
        var command = study.AddTo(new Command("dance",
            "Music to dance (Tang et al., 2018) on synthetic clips whose motion pauses on every beat: a causal sequence model " +
            "maps 16 music features per frame (and, optionally, the temporal indexes) to a skeleton's pose, trained by mean " +
            "squared error; prints the pose error and how well the generated motion's beats land on the music's (beat F1, " +
            "beat align score) next to the true dance and the mean pose."));
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = DanceConfig.Load(parse.GetValue(study.Config), study.OverridesOf(parse));
            int[] seedList = study.SeedsOf(parse);
            study.StartTorch(parse, c.Training.Threads);
            var (runs, example) = DanceStudy.Run(c, seedList, Console.WriteLine);
            Report.WideWhenRedirected();
            var table = new Table().Title($"{c.Motion.TestClips} test clips of {c.Motion.Frames} frames; median (lowest–highest) " +
                    $"over {seedList.Length} seeds")
                .AddColumns("generator", "temporal indexes", "pose MSE", "beat F1", "beat align", "s");
            foreach (var g in runs.GroupBy(r => (r.Generator, r.TemporalIndexes)))
                table.AddRow(g.Key.Generator, g.First().Seconds == 0 ? "" : g.Key.TemporalIndexes ? "yes" : "no",
                    Statistics.Spread(g.Select(r => r.Mse), "F4"), Statistics.Spread(g.Select(r => r.BeatF), "F3"),
                    Statistics.Spread(g.Select(r => r.BeatAlign), "F3"), Statistics.Spread(g.Select(r => r.Seconds), "F0"));
            AnsiConsole.Write(table);
            if (study.Write(parse, "dance.json", c.ToJson(), "runs", runs) is { } dir)
            {
                DancePlot.Save(example, c.Motion.Fps, Path.Combine(dir, "dance.png"));
                Console.WriteLine($"wrote {Path.Combine(dir, "dance.png")}");
            }
            return 0;
        }));
        return command;
    }
}
