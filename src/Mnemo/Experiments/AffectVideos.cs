using Mnemo.IO;
using Mnemo.Runtime;

namespace Mnemo.Experiments;

/// <summary>The three modalities of an utterance (docs/affect-dance.md#affect).</summary>
public enum Modality { Text, Audio, Video }

/// <summary>How the synthetic videos are made (docs/affect-dance.md#the-videos).</summary>
public sealed record AffectVideosConfig : IValidatedConfig
{
    [Help("affect classes (IEMOCAP's four: angry, happy, sad, neutral)"), Range(2, 1000)] public int Classes { get; init; } = 4;
    [Help("utterances per video"), Range(1, 100_000)] public int Utterances { get; init; } = 16;
    [Help("training videos"), Range(1, 10_000_000)] public int TrainVideos { get; init; } = 2000;
    [Help("test videos"), Range(1, 10_000_000)] public int TestVideos { get; init; } = 500;
    [Help("chance that an utterance keeps the previous one's class (else a different class, uniformly)"), Range(0, 1)]
    public double Stay { get; init; } = 0.8;
    [Help("features per utterance of each modality: text, audio, video")] public int[] Dims { get; init; } = [16, 24, 12];
    [Help("class signal per feature of each modality (the noise has standard deviation 1)")]
    public double[] Signal { get; init; } = [0.45, 0.3, 0.25];
    [Help("share of utterances whose signal is scaled by ambiguous_signal in every modality"), Range(0, 1)]
    public double Ambiguous { get; init; } = 0.3;
    [Help("the factor on an ambiguous utterance's signal"), Range(0, 1)] public double AmbiguousSignal { get; init; } = 0.1;
    [Help("standard deviation of each video's speaker offset, one per feature, added to all its utterances"), Range(0, 100)]
    public double SpeakerStd { get; init; } = 1.0;

    public IEnumerable<(string, string)> Validate()
    {
        if (Dims.Length != 3 || Dims.Any(d => d < 1)) yield return ("dims", "give three feature counts ≥ 1: text, audio, video");
        if (Signal.Length != 3 || Signal.Any(s => s < 0)) yield return ("signal", "give three strengths ≥ 0: text, audio, video");
    }
}

/// <summary>Videos of <c>utterances</c> utterances: each one's features of every modality, flattened [utterance, modality
/// feature], and its class.</summary>
public sealed record AffectVideo(float[][] Features, int[] Labels, bool[] Ambiguous);

/// <summary>
/// Synthetic stand-in for utterance-level multimodal affect data (MOSI, IEMOCAP; Poria et al. 2017), built so that an
/// utterance's class depends on its context: classes persist from utterance to utterance (a sticky Markov chain), some
/// utterances carry almost no signal, and every video has its own speaker offset on every feature. Features of modality
/// m for class y: a·s_m·μ_m[y] + o_m + ε, with fixed class prototypes μ_m[y] ~ N(0, I), signal s_m, clarity a (1, or
/// ambiguous_signal), the video's offset o_m ~ N(0, speaker_std² I) and noise ε ~ N(0, I).
/// </summary>
public sealed class AffectVideos
{
    readonly AffectVideosConfig _c;
    readonly double[][][] _prototypes;                                   // [modality][class][feature]

    /// <param name="seed">draws the class prototypes (the "world" that training and test videos share)</param>
    public AffectVideos(AffectVideosConfig c, int seed)
    {
        _c = c;
        var rng = new Random(seed);
        _prototypes = [.. c.Dims.Select(d => Enumerable.Range(0, c.Classes).Select(_ => Gaussians(rng, d, 1)).ToArray())];
    }

    /// <summary>Feature columns of each modality in an utterance's flattened features.</summary>
    public (int Start, int Count) Columns(Modality m) => (_c.Dims.Take((int)m).Sum(), _c.Dims[(int)m]);

    public AffectVideo[] Generate(int count, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => One(rng))];
    }

    AffectVideo One(Random rng)
    {
        int u = _c.Utterances;
        var labels = new int[u];
        var ambiguous = new bool[u];
        var offsets = _c.Dims.Select(d => Gaussians(rng, d, _c.SpeakerStd)).ToArray();
        var features = new float[u][];
        for (int t = 0; t < u; t++)
        {
            labels[t] = t == 0 || rng.NextDouble() >= _c.Stay
                ? (t == 0 ? rng.Next(_c.Classes) : (labels[t - 1] + 1 + rng.Next(_c.Classes - 1)) % _c.Classes)
                : labels[t - 1];
            ambiguous[t] = rng.NextDouble() < _c.Ambiguous;
            double clarity = ambiguous[t] ? _c.AmbiguousSignal : 1;
            features[t] = [.. _c.Dims.SelectMany((d, m) => Enumerable.Range(0, d).Select(j =>
                (float)(clarity * _c.Signal[m] * _prototypes[m][labels[t]][j] + offsets[m][j] + rng.NextGaussian())))];
        }
        return new AffectVideo(features, labels, ambiguous);
    }

    static double[] Gaussians(Random rng, int count, double std) => [.. Enumerable.Range(0, count).Select(_ => std * rng.NextGaussian())];
}
