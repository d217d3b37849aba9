using System.Diagnostics;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>One model (mixer × encoder × seed) measured on the test dialogs: all questions, and apart the questions that
/// say "it" (answerable only through the history) and those that name what they ask about.</summary>
/// <param name="Templates">by question template (<see cref="QuestionKind"/>, named as in docs/dialog.md)</param>
/// <param name="Loss">the training loss at the end, smoothed</param>
public sealed record DialogRun(string Mixer, string Encoder, int Seed, RankMetrics All, RankMetrics Referring, RankMetrics Naming,
    IReadOnlyDictionary<string, RankMetrics> Templates, double Loss, double TrainSeconds, long Parameters);

/// <summary>The dialogs of a study as the models read them: the words, the train and test sets, and their candidates.</summary>
public sealed class DialogSets
{
    public required DialogWords Words { get; init; }
    public required SceneDialog[] Train { get; init; }
    public required SceneDialog[] Test { get; init; }
    public required CandidateSets Candidates { get; init; }
    public required int Seed { get; init; }

    /// <summary>Train and test dialogs generated from data.seed (apart); candidates use the training dialogs' answers only.</summary>
    public static DialogSets Build(DialogDataConfig c)
    {
        var train = SceneDialogs.Generate(c.TrainDialogs, SeedMixer.Derive(c.Seed, 1));
        var test = SceneDialogs.Generate(c.TestDialogs, SeedMixer.Derive(c.Seed, 2));
        var words = new DialogWords(SceneDialogs.AllAnswers.Concat(train.Concat(test)
            .SelectMany(d => d.Rounds.Select(r => r.Question).Append(d.Caption).Append(d.Description))));
        return new DialogSets
        {
            Words = words, Train = train, Test = test, Candidates = new CandidateSets(train, c.Candidates, c.Plausible, c.Popular),
            Seed = c.Seed,
        };
    }

    /// <summary>The candidates of each round of a dialog, drawn from data.seed and the dialog's place: the same every time
    /// it is read, without holding them all.</summary>
    public (int[] Candidates, int Truth)[] CandidatesOf(bool test, int dialog)
    {
        var rng = new Random(SeedMixer.Derive(Seed, 3, test ? 1 : 0, dialog));
        return [.. (test ? Test : Train)[dialog].Rounds.Select(r => Candidates.For(r, rng))];
    }

    public DialogBatch Batch(bool test, IReadOnlyList<int> dialogs) => DialogBatch.Of(Words,
        [.. dialogs.Select(i => (test ? Test : Train)[i])], [.. dialogs.Select(i => CandidatesOf(test, i))]);
}

/// <summary>
/// Visual Dialog's discriminative task on the generated dialogs (docs/dialog.md): every encoder, with every reader made
/// of the chosen mixer, is trained to rank the human answer first among the candidates of each round, then ranks the
/// test dialogs' candidates.
/// </summary>
public static class DialogStudy
{
    public static List<DialogRun> Run(DialogConfig c, DialogSets data, IReadOnlyList<MixerKind> mixers, IReadOnlyList<EncoderSpec> encoders,
        IReadOnlyList<int> seeds, Action<string>? log = null)
    {
        var runs = new List<DialogRun>();
        foreach (var mixer in mixers)
            foreach (var encoder in encoders)
                foreach (int seed in seeds)
                {
                    var config = c with { Model = c.Model with { Mixer = mixer }, Training = c.Training with { Seed = seed } };
                    string name = $"{Names.Of(mixer)} {encoder.Name} seed {seed}";
                    var clock = Stopwatch.StartNew();
                    var (model, loss) = Train(config, data, encoder, name, log);
                    double seconds = clock.Elapsed.TotalSeconds;
                    var ranks = Evaluate(model, data, c.EvalBatch);
                    RankMetrics Of(Func<DialogRound, bool> which) =>
                        RankMetrics.Of([.. ranks.Where(r => which(r.Round)).Select(r => r.Rank)]);
                    var templates = ranks.Select(r => r.Round.Kind).Distinct().Order()
                        .ToDictionary(k => Names.Of(k), k => Of(r => r.Kind == k));
                    var run = new DialogRun(Names.Of(mixer), encoder.Name, seed, Of(_ => true), Of(r => r.Refers), Of(r => !r.Refers),
                        templates, loss, seconds, model.parameters().Sum(p => p.numel()));
                    model.Dispose();
                    log?.Invoke($"{name}: MRR {run.All.Mrr:F3}, R@1 {100 * run.All.RecallAt1:F1}% (\"it\" questions " +
                        $"{100 * run.Referring.RecallAt1:F1}%), mean rank {run.All.MeanRank:F2}; {seconds:F0} s");
                    runs.Add(run);
                }
        return runs;
    }

    /// <summary>Trains one model: batches of training.batch_size dialogs drawn with replacement, all ten rounds scored.</summary>
    public static (DialogModel Model, double Loss) Train(DialogConfig c, DialogSets data, EncoderSpec encoder, string name,
        Action<string>? log = null)
    {
        var t = c.Training;
        TorchRuntime.Seed(SeedMixer.Derive(t.Seed, 1));
        var model = new DialogModel(c.Model, encoder, data.Words);
        var rng = new Random(SeedMixer.Derive(t.Seed, 2));
        double loss = FitLoop.Run(model, t, name, _ =>
        {
            using var batch = data.Batch(false, [.. Enumerable.Range(0, t.BatchSize).Select(_ => rng.Next(data.Train.Length))]);
            return model.Loss(batch);
        }, (step, smoothed) => log?.Invoke($"{name}: step {step}/{t.Steps}, loss {smoothed:F3}"));
        return (model, loss);
    }

    /// <summary>The rank of every test question's human answer, with its round.</summary>
    public static List<(int Rank, DialogRound Round)> Evaluate(DialogModel model, DialogSets data, int batchSize)
    {
        var ranks = new List<(int Rank, DialogRound Round)>();
        model.eval();
        for (int start = 0; start < data.Test.Length; start += batchSize)
        {
            int[] dialogs = [.. Enumerable.Range(start, Math.Min(batchSize, data.Test.Length - start))];
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            using var batch = data.Batch(true, dialogs);
            var rank = Ranking.Ranks(model.Scores(batch).flatten(0, 1), batch.Truth.flatten());
            int k = 0;
            foreach (int d in dialogs)
                foreach (var round in data.Test[d].Rounds) ranks.Add((rank[k++], round));
        }
        return ranks;
    }
}
