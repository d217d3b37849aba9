using System.CommandLine;
using Mnemo.Experiments;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo few-shot`: Orhan 2023's recognition, recall and retention of few-shot memories.</summary>
static class FewShotCommand
{
    public static Command Create()
    {
        var exposures = new Option<int[]>("--exposures")
        {
            Description = "Times the study set is seen (overrides the config's exposures)", AllowMultipleArgumentsPerToken = true,
        };
        var study = new StudyOptions(
            "Few-shot config file (docs/few-shot-memory.md). Default: byte-level models of width 128 (attention, Gated DeltaNet, " +
            "LSTM) pretrained 600 steps on Austen, 64 held-out sentences (and random-word strings) studied 1–16 times, then " +
            "256 updates on new text after 16",
            "items, orders, initialisation", "--set items=32, --set mixers=[attention,lstm], --set study_lr=3e-4",
            "few-shot.json and the plots (recognition and recall against exposures and against interference)");
        var command = study.AddTo(new Command("few-shot",
            "Recognition, recall and retention of few-shot memories (Orhan, 2023): a pretrained byte-level language model " +
            "studies held-out sentences (and gibberish and random-word strings) a few times; recognition is a two-alternative " +
            "choice by loss against an unstudied foil, recall the greedy completion of an item from its first half (ROUGE-L); " +
            "then the model trains on new text and both are re-tested after 1, 2, 4, … updates.")
        {
            exposures,
        });
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var overrides = study.OverridesOf(parse).ToList();
            if (parse.GetValue(exposures) is { Length: > 0 } e) overrides.Add($"exposures=[{string.Join(",", e)}]");
            var c = FewShotConfig.Load(parse.GetValue(study.Config), overrides);
            int[] seedList = study.SeedsOf(parse);
            study.StartTorch(parse, c.Pretraining.Threads);
            var results = FewShotMemory.Run(c, seedList, Console.WriteLine);
            Report.WideWhenRedirected();
            string Of(IEnumerable<FewShotResult> g, Func<FewShotResult, double> value, string format) =>
                Statistics.Spread(g.Select(value), format);
            var table = new Table().Title($"{c.Corpus}: {c.Items} items studied; median (lowest–highest) over {seedList.Length} seeds")
                .AddColumns("mixer", "material", "exposures", "recognition %", "recall ROUGE-L", "same, cue included", "verbatim %",
                    "bits/byte studied / foils");
            foreach (var g in results.Where(r => r.Delay == 0).GroupBy(r => (r.Mixer, r.Material, r.Exposures)))
                table.AddRow(g.Key.Mixer, Names.Of(g.Key.Material), $"{g.Key.Exposures}", Of(g, r => 100 * r.Recognition, "F1"),
                    Of(g, r => r.Recall, "F3"), Of(g, r => r.RecallWhole, "F3"), Of(g, r => 100 * r.Verbatim, "F1"),
                    $"{Statistics.Median(g.Select(r => r.Studied)):F3} / {Statistics.Median(g.Select(r => r.Foils)):F3}");
            AnsiConsole.Write(table);
            if (c.RetentionExposures > 0 && c.InterferenceSteps > 0)
            {
                var kept = results.Where(r => r.Exposures == c.RetentionExposures).ToArray();
                int[] delays = [.. kept.Select(r => r.Delay).Distinct().Order()];
                var retention = new Table().Title($"Retention after {c.RetentionExposures} exposures: recognition % / recall ROUGE-L " +
                    "(medians) after so many updates on new text").AddColumns(["mixer", "material", .. delays.Select(d => $"{d}")]);
                foreach (var g in kept.GroupBy(r => (r.Mixer, r.Material)))
                    retention.AddRow([g.Key.Mixer, Names.Of(g.Key.Material), .. delays.Select(d => g.Where(r => r.Delay == d))
                        .Select(at => $"{Statistics.Median(at.Select(r => 100 * r.Recognition)):F0} / " +
                            $"{Statistics.Median(at.Select(r => r.Recall)):F2}")]);
                AnsiConsole.Write(retention);
            }
            if (study.Write(parse, "few-shot.json", c.ToJson(), "results", results) is { } dir)
            {
                foreach (var (file, retention, what, percent, measure) in new (string, bool, string, bool, Func<FewShotResult, double>)[]
                {
                    ("few-shot-recognition.png", false, "recognition (% of studied items beating their foil)", true, r => r.Recognition),
                    ("few-shot-recall.png", false, "recall (ROUGE-L of the completed second half)", false, r => r.Recall),
                    ("few-shot-retention-recognition.png", true, "recognition (%)", true, r => r.Recognition),
                    ("few-shot-retention-recall.png", true, "recall (ROUGE-L)", false, r => r.Recall),
                })
                {
                    if (retention && !results.Any(r => r.Delay > 0)) continue;
                    FewShotMemoryPlot.Save(results, retention, measure, what, percent, Path.Combine(dir, file));
                    Console.WriteLine($"wrote {Path.Combine(dir, file)}");
                }
            }
            return 0;
        }));
        return command;
    }
}
