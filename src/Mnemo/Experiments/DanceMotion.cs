using Mnemo.IO;
using Mnemo.Runtime;

namespace Mnemo.Experiments;

/// <summary>The four dances of Tang et al.'s data, each with its tempo range and meter (docs/affect-dance.md#the-music).</summary>
public enum DanceStyle { ChaCha, Tango, Rumba, Waltz }

/// <summary>How the synthetic music and dances are made (docs/affect-dance.md#the-music).</summary>
public sealed record DanceMotionConfig : IValidatedConfig
{
    [Help("frames per second"), Range(1, 1000)] public int Fps { get; init; } = 25;
    [Help("frames per clip"), Range(8, 1_000_000)] public int Frames { get; init; } = 200;
    [Help("training clips"), Range(1, 10_000_000)] public int TrainClips { get; init; } = 800;
    [Help("test clips"), Range(1, 10_000_000)] public int TestClips { get; init; } = 200;
    [Help("skeleton joints (3 coordinates each)"), Range(1, 1000)] public int Joints { get; init; } = 10;
    [Help("chance of an extra, weaker onset half-way through each beat: onsets that are not beats"), Range(0, 1)]
    public double Syncopation { get; init; } = 0.3;
    [Help("standard deviation of the noise on every music feature"), Range(0, 10)] public double FeatureNoise { get; init; } = 0.15;
    [Help("standard deviation of the noise on every pose coordinate"), Range(0, 10)] public double PoseNoise { get; init; } = 0.01;

    public IEnumerable<(string, string)> Validate() => [];
}

/// <summary>A clip: music features and pose at every frame, the beat frames, the dance and the tempo.</summary>
/// <param name="Music">[frame][feature]: the 16 acoustic features, then the 3 temporal indexes</param>
/// <param name="Pose">[frame][joint·3 + coordinate]</param>
public sealed record DanceClip(float[][] Music, float[][] Pose, int[] Beats, DanceStyle Style, double Bpm);

/// <summary>
/// Synthetic stand-in for music-to-dance data (Tang et al. 2018's motion capture of four dances with their music), built
/// so that the dance follows the music's beat. Each style has a tempo range, a meter, a chord progression, a timbre and a
/// choreography: a pose that is a smooth periodic function of the bar phase ψ. Within each beat, ψ advances by the warp
/// w(φ) = φ − sin(2πφ)/(2π) of the beat phase φ, so the motion stops on every beat (its kinematic beats are the music's
/// beats) and moves fastest between them. The clip's energy scales both the onsets and the motion.
/// </summary>
public sealed class DanceMotion
{
    /// <summary>Acoustic features per frame (onset strength, 3 MFCC-like, their 3 deltas, 4 chroma, 5 tempogram bins, as
    /// Tang et al.'s 16) and temporal indexes (frame position, beat flag, seconds since the last beat).</summary>
    public const int Acoustic = 16, Indexes = 3;

    static readonly (double Low, double High, int Meter)[] Styles = [(112, 128, 4), (120, 134, 4), (96, 108, 4), (84, 96, 3)];
    static readonly double[] TempoBins = [80, 100, 120, 140, 160];
    const int Harmonics = 3;

    readonly DanceMotionConfig _c;
    readonly double[][] _timbre, _base;                                   // [style][3], [style][J·3]
    readonly int[][] _progression;                                        // [style][4 bars]: chord per bar
    readonly double[][][] _cos, _sin;                                     // [style][harmonic][J·3]

    /// <param name="seed">draws the styles' timbres, progressions and choreographies</param>
    public DanceMotion(DanceMotionConfig c, int seed)
    {
        _c = c;
        var rng = new Random(seed);
        int n = c.Joints * 3, styles = Styles.Length;
        double[] Normal(int count, double std) => [.. Enumerable.Range(0, count).Select(_ => std * rng.NextGaussian())];
        _timbre = [.. Enumerable.Range(0, styles).Select(_ => Normal(3, 1))];
        _progression = [.. Enumerable.Range(0, styles).Select(_ => Enumerable.Range(0, 4).Select(_ => rng.Next(4)).ToArray())];
        _base = [.. Enumerable.Range(0, styles).Select(_ => Normal(n, 1))];
        _cos = [.. Enumerable.Range(0, styles).Select(_ => Enumerable.Range(1, Harmonics).Select(h => Normal(n, 0.6 / h)).ToArray())];
        _sin = [.. Enumerable.Range(0, styles).Select(_ => Enumerable.Range(1, Harmonics).Select(h => Normal(n, 0.6 / h)).ToArray())];
    }

    public DanceClip[] Generate(int count, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => One(rng))];
    }

    DanceClip One(Random rng)
    {
        var style = (DanceStyle)rng.Next(Styles.Length);
        var (low, high, meter) = Styles[(int)style];
        double bpm = low + (high - low) * rng.NextDouble(), period = 60.0 * _c.Fps / bpm;             // frames per beat
        double first = period * rng.NextDouble(), energy = 0.6 + 0.8 * rng.NextDouble();
        int frames = _c.Frames, s = (int)style;
        var offbeats = Enumerable.Range(0, (int)(frames / period) + 3).Select(_ => rng.NextDouble() < _c.Syncopation).ToArray();
        var music = new float[frames][];
        var pose = new float[frames][];
        var beats = new List<int>();
        double[] mfccBefore = [];
        for (int t = 0; t < frames; t++)
        {
            double beatTime = (t - first) / period;                       // beats since the first beat (negative before it)
            int beat = (int)Math.Floor(beatTime), inBar = ((beat % meter) + meter) % meter, bar = (int)Math.Floor((double)beat / meter);
            double phase = beatTime - beat, near = Math.Min(phase, 1 - phase) * period;                // frames to the nearest beat
            bool downbeat = (phase < 0.5 ? inBar : (inBar + 1) % meter) == 0;
            double onset = energy * (downbeat ? 1.5 : 1) * Math.Exp(-near * near / 2);
            double half = Math.Abs(phase - 0.5) * period;
            if (offbeats[Math.Max(0, beat + 1)]) onset += 0.6 * energy * Math.Exp(-half * half / 2);
            double[] mfcc = [.. _timbre[s].Select(v => v + 0.5 * (energy - 1) + _c.FeatureNoise * rng.NextGaussian())];
            int chord = _progression[s][((bar % 4) + 4) % 4];
            if (near < 0.5) beats.Add(t);                                 // the frame nearest a beat
            double[] features =
            [
                onset + _c.FeatureNoise * Math.Abs(rng.NextGaussian()),
                .. mfcc,
                .. mfcc.Select((v, i) => t == 0 ? 0 : v - mfccBefore[i]),
                .. Enumerable.Range(0, 4).Select(k => (k == chord ? 1.0 : 0) + _c.FeatureNoise * rng.NextGaussian()),
                .. TempoBins.Select(centre =>
                    Math.Exp(-(bpm - centre) * (bpm - centre) / (2 * 12 * 12)) + 0.3 * _c.FeatureNoise * rng.NextGaussian()),
                (double)t / frames, near < 0.5 ? 1 : 0, phase * period / _c.Fps,
            ];
            mfccBefore = mfcc;
            music[t] = [.. features.Select(v => (float)v)];
            double psi = (inBar + phase - Math.Sin(2 * Math.PI * phase) / (2 * Math.PI)) / meter;      // bar phase, warped per beat
            pose[t] = [.. Enumerable.Range(0, _c.Joints * 3).Select(j => (float)(_base[s][j] + energy * Enumerable.Range(1, Harmonics)
                .Sum(h => _cos[s][h - 1][j] * Math.Cos(2 * Math.PI * h * psi) + _sin[s][h - 1][j] * Math.Sin(2 * Math.PI * h * psi))
                + _c.PoseNoise * rng.NextGaussian()))];
        }
        return new DanceClip(music, pose, [.. beats], style, bpm);
    }
}
