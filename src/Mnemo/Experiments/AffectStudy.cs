using System.Diagnostics;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>How utterances are classified (docs/affect-dance.md#the-classifiers; Poria et al. 2017's names).</summary>
public enum AffectClassifierKind
{
    /// <summary>non-contextual: an MLP on each utterance's concatenated features alone (the paper's uni-SVM baseline)</summary>
    Fc,
    /// <summary>contextual, unidirectional: model.mixer over the video's utterances, early fusion (concatenated features)</summary>
    ScLstm,
    /// <summary>contextual, bidirectional LSTM, early fusion (the paper's non-hierarchical bc-LSTM)</summary>
    BcLstm,
    /// <summary>a bidirectional LSTM per modality, then one over their concatenated states (the paper's hierarchical fusion)</summary>
    BcLstmHier,
}

/// <summary>The affect study: videos, classifiers, modality sets and training (docs/affect-dance.md#affect).</summary>
public sealed record AffectConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public AffectVideosConfig Videos { get; init; } = new();
    [Help("classifiers compared: fc, sc_lstm, bc_lstm, bc_lstm_hier")]
    public AffectClassifierKind[] Classifiers { get; init; } =
        [AffectClassifierKind.Fc, AffectClassifierKind.ScLstm, AffectClassifierKind.BcLstm, AffectClassifierKind.BcLstmHier];
    [Help("modality sets, each a list of text, audio, video")]
    public Modality[][] ModalitySets { get; init; } = [[Modality.Text], [Modality.Text, Modality.Audio, Modality.Video]];
    [Help("the contextual classifiers' recurrent model (bc_* need lstm or gru: they are bidirectional); fc uses d_model")]
    public ModelConfig Model { get; init; } = new() { DModel = 64, NumLayers = 1, NumHeads = 1, MlpRatio = 0, Mixer = MixerKind.Lstm };
    [Help("training: batch_size videos per step")]
    public TrainingConfig Training { get; init; } = new() { Steps = 800, BatchSize = 32, Lr = 2e-3, WarmupSteps = 40, WeightDecay = 0.01 };

    public IEnumerable<(string, string)> Validate()
    {
        if (Classifiers.Length == 0) yield return ("classifiers", "name at least one of fc, sc_lstm, bc_lstm, bc_lstm_hier");
        if (ModalitySets.Length == 0 || ModalitySets.Any(s => s.Length == 0 || s.Distinct().Count() != s.Length))
            yield return ("modality_sets", "give at least one set, each of distinct modalities (text, audio, video)");
        if (Classifiers.Any(k => k is AffectClassifierKind.BcLstm or AffectClassifierKind.BcLstmHier)
            && Model.Mixer is not (MixerKind.Lstm or MixerKind.Gru))
            yield return ("model.mixer",
                $"bc_lstm and bc_lstm_hier are bidirectional recurrent cells: use lstm or gru, not {Names.Of(Model.Mixer)}");
    }

    public static AffectConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new AffectConfig(), file, overrides ?? [], "the default affect config");

    public string ToJson() => ConfigBinder.ToJson(this);
}

/// <summary>One classifier on one modality set and seed: test accuracy over all utterances, the ambiguous ones and the
/// clear ones.</summary>
/// <param name="AmbiguousAccuracy">null when no test utterance is ambiguous</param>
/// <param name="ClearAccuracy">null when every test utterance is ambiguous</param>
public sealed record AffectRun(int Seed, AffectClassifierKind Classifier, string Modalities, double Accuracy, double? AmbiguousAccuracy,
    double? ClearAccuracy, double Seconds);

/// <summary>
/// Poria et al. 2017, "Context-Dependent Sentiment Analysis in User-Generated Videos" (docs/affect-dance.md#affect), on
/// <see cref="AffectVideos"/>: a non-contextual classifier against contextual recurrent ones, with early and
/// hierarchical fusion of the modalities, scored by utterance accuracy.
/// </summary>
public static class AffectStudy
{
    public static List<AffectRun> Run(AffectConfig c, IReadOnlyList<int> seeds, Action<string>? log = null)
    {
        var runs = new List<AffectRun>();
        foreach (int seed in seeds)
        {
            var world = new AffectVideos(c.Videos, SeedMixer.Derive(seed, 1));
            var train = world.Generate(c.Videos.TrainVideos, SeedMixer.Derive(seed, 2));
            var test = world.Generate(c.Videos.TestVideos, SeedMixer.Derive(seed, 3));
            foreach (var set in c.ModalitySets)
                foreach (var kind in c.Classifiers)
                {
                    var run = One(c, world, train, test, kind, set, seed);
                    log?.Invoke($"{Names.Of(kind)} on {run.Modalities}, seed {seed}: accuracy {100 * run.Accuracy:F1}% " +
                        $"(ambiguous {100 * run.AmbiguousAccuracy:F1}%, clear {100 * run.ClearAccuracy:F1}%); {run.Seconds:F0} s");
                    runs.Add(run);
                }
        }
        return runs;
    }

    static AffectRun One(AffectConfig c, AffectVideos world, AffectVideo[] train, AffectVideo[] test, AffectClassifierKind kind,
        Modality[] set, int seed)
    {
        var clock = Stopwatch.StartNew();
        var columns = set.Select(world.Columns).ToArray();
        TorchRuntime.Seed(SeedMixer.Derive(seed, 4, (int)kind));
        using var model = new AffectClassifier(c.Model, kind, [.. columns.Select(x => x.Count)], c.Videos.Classes);
        var rng = new Random(SeedMixer.Derive(seed, 5));
        string name = $"{Names.Of(kind)} on {string.Join("+", set.Select(m => Names.Of(m)))}";
        FitLoop.Run(model, c.Training with { Seed = seed }, name, _ =>
        {
            var batch = Enumerable.Range(0, c.Training.BatchSize).Select(_ => train[rng.Next(train.Length)]).ToArray();
            var logits = model.forward(Inputs(batch, columns));                                       // [B, U, C]
            return nn.functional.cross_entropy(logits.flatten(0, 1), Labels(batch).flatten());
        });
        int correct = 0, ambiguous = 0, ambiguousCorrect = 0, total = 0;
        using (no_grad())
            foreach (var chunk in test.Chunk(256))
            {
                using var scope = NewDisposeScope();
                var predicted = model.forward(Inputs(chunk, columns)).argmax(-1).data<long>().ToArray();   // [n·U]
                int u = chunk[0].Labels.Length;
                for (int i = 0; i < predicted.Length; i++)
                {
                    var video = chunk[i / u];
                    bool right = predicted[i] == video.Labels[i % u];
                    correct += right ? 1 : 0;
                    total++;
                    if (video.Ambiguous[i % u])
                    {
                        ambiguous++;
                        ambiguousCorrect += right ? 1 : 0;
                    }
                }
            }
        return new AffectRun(seed, kind, string.Join("+", set.Select(m => Names.Of(m))), (double)correct / total,
            ambiguous == 0 ? null : (double)ambiguousCorrect / ambiguous,
            total == ambiguous ? null : (double)(correct - ambiguousCorrect) / (total - ambiguous), clock.Elapsed.TotalSeconds);
    }

    /// <summary>The chosen modalities' columns of every utterance, modality after modality: [B, U, F].</summary>
    static Tensor Inputs(AffectVideo[] videos, (int Start, int Count)[] columns)
    {
        int u = videos[0].Features.Length, f = columns.Sum(x => x.Count);
        var values = new float[videos.Length * u * f];
        int at = 0;
        foreach (var video in videos)
            foreach (var utterance in video.Features)
                foreach (var (start, count) in columns)
                {
                    Array.Copy(utterance, start, values, at, count);
                    at += count;
                }
        return tensor(values).view(videos.Length, u, f);
    }

    static Tensor Labels(AffectVideo[] videos) => tensor(videos.SelectMany(v => v.Labels.Select(y => (long)y)).ToArray())
        .view(videos.Length, -1);
}
