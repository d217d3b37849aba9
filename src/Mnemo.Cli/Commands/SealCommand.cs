using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Retrieval;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo seal`: SEAL's generated-n-gram retrieval against BM25 on the New Testament (docs/retrieval.md).</summary>
static class SealCommand
{
    public static Command Create()
    {
        var mixers = new Option<string[]>("--mixers")
        {
            Description = "Mixers of the generator, one model each (any of `mnemo list`). Default: attention",
            AllowMultipleArgumentsPerToken = true,
        };
        var study = new StudyOptions(
            "Seal config file (docs/retrieval.md#configuration). Default: the Gospel of John in passages of 4 verses, every " +
            "passage asking twice, a 4-layer attention generator of width 128 trained 3,000 steps",
            "the generator's initialisation and training pairs",
            "--set data.books=[\"John\"], --set training.steps=500, --set search.beam=5", "seal.json");
        var command = study.AddTo(new Command("seal",
            "Retrieve passages of the New Testament (King James text; scripts/setup-corpora.sh) by SEAL: a Mnemo language " +
            "model generates n-grams that an FM-index constrains to the corpus, and passages are scored by the n-grams they " +
            "contain. Queries are each passage's held-out verse in the World English Bible (a paraphrase) and words cut " +
            "from its King James text (an excerpt); prints recall@1/5/10/100 and MRR against Lucene's BM25.")
        {
            mixers,
        });
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = SealConfig.Load(parse.GetValue(study.Config), study.OverridesOf(parse));
            var kinds = OptionValues.Mixers(parse.GetValue(mixers), "attention");
            int[] seedList = study.SeedsOf(parse);
            var verses = ParallelVerses.Load(c.Data.Books);
            var passages = ParallelVerses.Passages(verses, c.Data.VersesPerPassage, c.Data.Seed);
            Console.WriteLine($"{verses.Count:N0} verses in {passages.Count:N0} passages");
            study.StartTorch(parse, c.Training.Threads);
            var scores = SealStudy.Run(c, passages, kinds, seedList, Console.WriteLine);
            Report.WideWhenRedirected();
            int measured = c.Data.Queries == 0 ? passages.Count : Math.Min(c.Data.Queries, passages.Count);
            var table = new Table().Title($"{passages.Count:N0} passages, {measured:N0} queries of each kind; median (lowest–highest) " +
                $"over {seedList.Length} seeds").AddColumns("retriever", "queries");
            foreach (int k in SealStudy.Cutoffs) table.AddColumn($"R@{k} %");
            table.AddColumns("MRR", "ms per query", "parameters");
            foreach (var g in scores.GroupBy(r => (r.Retriever, r.Queries)))
            {
                string Of(Func<RetrievalScore, double> value, string format) => Statistics.Spread(g.Select(value), format);
                table.AddRow([g.Key.Retriever, g.Key.Queries,
                    .. SealStudy.Cutoffs.Select((_, i) => Of(r => 100 * r.Recall[i], "F1")),
                    Of(r => r.Mrr, "F3"), Of(r => 1000 * r.SecondsPerQuery, "F1"),
                    g.First().Parameters > 0 ? $"{g.First().Parameters:N0}" : "–"]);
            }
            AnsiConsole.Write(table);
            study.Write(parse, "seal.json", () => new JsonObject
            {
                ["config"] = JsonNode.Parse(c.ToJson()),
                ["passages"] = passages.Count,
                ["cutoffs"] = JsonSerializer.SerializeToNode(SealStudy.Cutoffs),
                ["scores"] = JsonSerializer.SerializeToNode(scores, ConfigBinder.WriteOptions),
            });
            return 0;
        }));
        return command;
    }
}
