using System.CommandLine;
using System.Globalization;
using Mnemo.Experiments;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo repeated-data`: Hernandez et al. 2022's repeated-data study at a fixed budget.</summary>
static class RepeatedDataCommand
{
    public static Command Create()
    {
        var fractions = new Option<double[]>("--fractions")
        {
            Description = "Shares of the training windows drawn from the repeated subset (overrides the config's fractions)",
            AllowMultipleArgumentsPerToken = true,
        };
        var repeats = new Option<int[]>("--repeats")
        {
            Description = "Times each repeated window is seen (overrides the config's repeats)", AllowMultipleArgumentsPerToken = true,
        };
        var study = new StudyOptions(
            "Repeated-data config file (docs/repeated-data.md). Default: Austen's novels as bytes, a 2-layer attention model of " +
            "width 128, 400 steps of 32 windows of 256, 10% of the windows repeated 1–1280 times",
            "subset, order, initialisation", "--set training.steps=200, --set corpus=kjv, --set model.mixer=gated_delta_net",
            "repeated-data.json and the plots (held-out loss, copying)");
        var command = study.AddTo(new Command("repeated-data",
            "Repeated data at a fixed budget (Hernandez et al., 2022): byte-level language models that all see the same number " +
            "of training windows, a share of them drawn from a small subset seen many times. Prints held-out bits per byte " +
            "against the share and the repeat count, how well the subset was memorised, and a copying probe (loss on the " +
            "second copy of a repeated span of held-out text and of random characters).")
        {
            fractions, repeats,
        });
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var overrides = study.OverridesOf(parse).ToList();
            if (parse.GetValue(fractions) is { Length: > 0 } f)
                overrides.Add($"fractions=[{string.Join(",", f.Select(x => x.ToString("R", CultureInfo.InvariantCulture)))}]");
            if (parse.GetValue(repeats) is { Length: > 0 } r) overrides.Add($"repeats=[{string.Join(",", r)}]");
            var c = RepeatedDataConfig.Load(parse.GetValue(study.Config), overrides);
            int[] seedList = study.SeedsOf(parse);
            study.StartTorch(parse, c.Training.Threads);
            var runs = RepeatedData.Run(c, seedList, Console.WriteLine);
            Report.WideWhenRedirected();
            var table = new Table().Title($"{c.Corpus}: {c.Training.Steps} steps × {c.Training.BatchSize} windows of {c.SeqLen} " +
                    "bytes per run; " +
                    $"bits per byte, median (lowest–highest) over {seedList.Length} seeds")
                .AddColumns("repeated share", "repeats", "subset windows", "held-out", "subset", "copy: text", "copy: random", "s");
            foreach (var g in runs.GroupBy(x => (x.Fraction, x.SubsetWindows)))
            {
                string Of(Func<RepeatedDataRun, double> value, string format) => Statistics.Spread(g.Select(value), format);
                table.AddRow($"{100 * g.Key.Fraction:G3}%", $"{g.First().Repeats:G4}", $"{g.Key.SubsetWindows:N0}",
                    Of(x => x.HeldOut, "F4"),
                    g.Key.SubsetWindows == 0 ? "" : Of(x => x.Subset!.Value, "F3"),
                    Of(x => x.CopyText, "F3") + $" / {Statistics.Median(g.Select(x => x.FirstText)):F3}",
                    Of(x => x.CopyRandom, "F3") + $" / {Statistics.Median(g.Select(x => x.FirstRandom)):F3}", Of(x => x.Seconds, "F0"));
            }
            AnsiConsole.Write(table);
            Console.WriteLine("copy: second copy / first copy of the span, bits per byte");
            if (study.Write(parse, "repeated-data.json", c.ToJson(), "runs", runs) is { } dir)
            {
                foreach (var (file, what, measure) in new (string, string, Func<RepeatedDataRun, double>)[]
                {
                    ("repeated-data-loss.png", "held-out bits per byte", x => x.HeldOut),
                    ("repeated-data-copy.png", "bits per byte on a repeated span's second copy", x => x.CopyText),
                })
                {
                    RepeatedDataPlot.Save(runs, measure, what, Path.Combine(dir, file));
                    Console.WriteLine($"wrote {Path.Combine(dir, file)}");
                }
            }
            return 0;
        }));
        return command;
    }
}
