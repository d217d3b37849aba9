using System.Diagnostics;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Training;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>The dance study: music, generators and training (docs/affect-dance.md#dance).</summary>
public sealed record DanceConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public DanceMotionConfig Motion { get; init; } = new();
    [Help("the generators' sequence models: each is model.mixer in turn (the paper's is an LSTM)")]
    public MixerKind[] Mixers { get; init; } = [MixerKind.Lstm, MixerKind.GatedDeltaNet, MixerKind.Attention];
    [Help("with and/or without the temporal indexes (frame position, beat flag, time since the beat) as inputs")]
    public bool[] TemporalIndexes { get; init; } = [true, false];
    [Help("the generator: causal, so frame t's pose reads the music up to t")]
    public ModelConfig Model { get; init; } = new() { DModel = 64, NumLayers = 2, NumHeads = 2, MlpRatio = 0, Mixer = MixerKind.Lstm };
    [Help("training: batch_size clips per step, mean squared error of every coordinate")]
    public TrainingConfig Training { get; init; } = new() { Steps = 1000, BatchSize = 16, Lr = 2e-3, WarmupSteps = 50, WeightDecay = 0.01 };
    [Help("frames either side of a music beat within which a motion beat hits it"), Range(0, 1000)]
    public int BeatTolerance { get; init; } = 2;

    public IEnumerable<(string, string)> Validate()
    {
        if (Mixers.Length == 0) yield return ("mixers", "name at least one mixer");
        if (TemporalIndexes.Length == 0) yield return ("temporal_indexes", "give true, false or both");
        if (Model.Rnn.Bidirectional)
            yield return ("model.rnn.bidirectional", "the generator is causal: a frame's pose reads the music up to it");
    }

    public static DanceConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new DanceConfig(), file, overrides ?? [], "the default dance config");

    public string ToJson() => ConfigBinder.ToJson(this);
}

/// <summary>One generator (or reference) on the test clips.</summary>
/// <param name="Generator">a mixer's name, or "truth" (the generated dance itself) or "mean pose" (the training mean at
/// every frame)</param>
/// <param name="Mse">mean squared error per coordinate against the true pose</param>
/// <param name="BeatF">F1 of the motion's kinematic beats against the music's beats (<see cref="DanceStudy.BeatScores"/>)</param>
/// <param name="BeatAlign">the beat align score: mean over motion beats of exp(−d²/(2·3²)), d the frames to the nearest
/// music beat</param>
public sealed record DanceRun(int Seed, string Generator, bool TemporalIndexes, double Mse, double BeatF, double BeatAlign, double Seconds);

/// <summary>The first seed's first test clip, for the plot: its beat frames and each generator's first coordinate per frame.</summary>
public sealed record DanceExample(DanceStyle Style, double Bpm, int[] Beats, List<(string Name, double[] Values)> Tracks);

/// <summary>
/// Tang et al. 2018, "Dance with Melody" (docs/affect-dance.md#dance), on <see cref="DanceMotion"/>: a causal sequence
/// model maps music features to the pose at every frame, trained by mean squared error, with and without the temporal
/// indexes; scored by pose error and by how well the generated motion's beats land on the music's.
/// </summary>
public static class DanceStudy
{
    public static (List<DanceRun> Runs, DanceExample Example) Run(DanceConfig c, IReadOnlyList<int> seeds, Action<string>? log = null)
    {
        var runs = new List<DanceRun>();
        DanceExample? example = null;
        foreach (int seed in seeds)
        {
            var world = new DanceMotion(c.Motion, SeedMixer.Derive(seed, 1));
            var train = world.Generate(c.Motion.TrainClips, SeedMixer.Derive(seed, 2));
            var test = world.Generate(c.Motion.TestClips, SeedMixer.Derive(seed, 3));
            var mean = Enumerable.Range(0, c.Motion.Joints * 3)
                .Select(j => (float)train.SelectMany(clip => clip.Pose).Average(p => p[j])).ToArray();
            runs.Add(Score(c, seed, "truth", false, test, [.. test.Select(clip => clip.Pose)], 0));
            example ??= new DanceExample(test[0].Style, test[0].Bpm, test[0].Beats, [("truth", Track(test[0].Pose))]);
            runs.Add(Score(c, seed, "mean pose", false, test, [.. test.Select(clip => clip.Pose.Select(_ => mean).ToArray())], 0));
            foreach (var mixer in c.Mixers)
                foreach (bool indexes in c.TemporalIndexes)
                {
                    var (run, first) = One(c, train, test, mixer, indexes, seed);
                    if (seed == seeds[0]) example!.Tracks.Add(($"{run.Generator}{(indexes ? "" : ", no indexes")}", Track(first)));
                    log?.Invoke($"{run.Generator}{(indexes ? "" : " without temporal indexes")}, seed {seed}: MSE {run.Mse:F4}, " +
                        $"beat F1 {run.BeatF:F3}, beat align {run.BeatAlign:F3}; {run.Seconds:F0} s");
                    runs.Add(run);
                }
        }
        return (runs, example!);
    }

    static double[] Track(float[][] pose) => [.. pose.Select(p => (double)p[0])];

    /// <returns>the scores, and the pose generated for the first test clip</returns>
    static (DanceRun Run, float[][] First) One(DanceConfig c, DanceClip[] train, DanceClip[] test, MixerKind mixer, bool indexes, int seed)
    {
        var clock = Stopwatch.StartNew();
        int features = DanceMotion.Acoustic + (indexes ? DanceMotion.Indexes : 0), outputs = c.Motion.Joints * 3;
        TorchRuntime.Seed(SeedMixer.Derive(seed, 4, (int)mixer, indexes ? 1 : 0));
        using var model = new WindowModel(c.Model with { Mixer = mixer }, features, outputs);
        var rng = new Random(SeedMixer.Derive(seed, 5));
        string name = Names.Of(mixer);
        FitLoop.Run(model, c.Training with { Seed = seed }, name, _ =>
        {
            var batch = Enumerable.Range(0, c.Training.BatchSize).Select(_ => train[rng.Next(train.Length)]).ToArray();
            return nn.functional.mse_loss(model.Steps(Music(batch, features)), Poses(batch));
        });
        var generated = new List<float[][]>();
        using (no_grad())
            foreach (var chunk in test.Chunk(64))
            {
                using var scope = NewDisposeScope();
                var poses = model.Steps(Music(chunk, features));                                      // [n, T, J·3]
                int frames = (int)poses.shape[1];
                var values = poses.data<float>().ToArray();
                foreach (int i in Enumerable.Range(0, chunk.Length))
                    generated.Add([.. Enumerable.Range(0, frames)
                        .Select(t => values.AsSpan((i * frames + t) * outputs, outputs).ToArray())]);
            }
        return (Score(c, seed, name, indexes, test, [.. generated], clock.Elapsed.TotalSeconds), generated[0]);
    }

    static DanceRun Score(DanceConfig c, int seed, string generator, bool indexes, DanceClip[] test, float[][][] poses, double seconds)
    {
        double squared = 0;
        long count = 0;
        var scores = new List<(double F, double Align)>();
        for (int i = 0; i < test.Length; i++)
        {
            for (int t = 0; t < poses[i].Length; t++)
                for (int j = 0; j < poses[i][t].Length; j++)
                {
                    double d = poses[i][t][j] - test[i].Pose[t][j];
                    squared += d * d;
                    count++;
                }
            scores.Add(BeatScores(MotionBeats(poses[i]), test[i].Beats, c.BeatTolerance));
        }
        return new DanceRun(seed, generator, indexes, squared / count, scores.Average(s => s.F), scores.Average(s => s.Align), seconds);
    }

    /// <summary>
    /// Kinematic beats: frames where the motion's speed |pose(t) − pose(t − 1)| is the least within two frames either side
    /// (with at least one speed on each side) and below half the clip's mean speed (a dancer pausing, not a slow stretch
    /// of a fast move).
    /// </summary>
    public static int[] MotionBeats(float[][] pose)
    {
        int frames = pose.Length;
        var speed = new double[frames];
        for (int t = 1; t < frames; t++)
            speed[t] = Math.Sqrt(pose[t].Select((v, j) => (double)(v - pose[t - 1][j]) * (v - pose[t - 1][j])).Sum());
        double mean = speed.Skip(1).DefaultIfEmpty(0).Average();
        var beats = new List<int>();
        for (int t = 2; t < frames - 1; t++)                          // a speed on each side: a minimum, not an edge
        {
            bool least = Enumerable.Range(Math.Max(1, t - 2), Math.Min(frames - 1, t + 2) - Math.Max(1, t - 2) + 1)
                .All(u => u == t || speed[t] < speed[u] || (speed[t] == speed[u] && t < u));
            if (least && speed[t] < 0.5 * mean) beats.Add(t);
        }
        return [.. beats];
    }

    /// <summary>
    /// Motion beats against music beats: F1 of hits, each motion beat in turn taking the nearest music beat within
    /// <paramref name="tolerance"/> frames that no earlier one took, and the beat align score (AIST++'s: the mean over
    /// motion beats of exp(−d²/(2·3²)), d the frames to the nearest music beat). A clip with no motion beat scores 0 on both.
    /// </summary>
    public static (double F, double Align) BeatScores(int[] motion, int[] music, int tolerance)
    {
        if (motion.Length == 0 || music.Length == 0) return (0, 0);
        var used = new bool[music.Length];
        int hits = 0;
        foreach (int m in motion)
        {
            int best = -1;
            for (int k = 0; k < music.Length; k++)
            {
                int d = Math.Abs(music[k] - m);
                if (!used[k] && d <= tolerance && (best < 0 || d < Math.Abs(music[best] - m))) best = k;
            }
            if (best < 0) continue;
            used[best] = true;
            hits++;
        }
        double precision = (double)hits / motion.Length, recall = (double)hits / music.Length;
        double f = hits == 0 ? 0 : 2 * precision * recall / (precision + recall);
        double align = motion.Average(m => Math.Exp(-Math.Pow(music.Min(b => Math.Abs(b - m)), 2) / (2 * 3 * 3)));
        return (f, align);
    }

    /// <summary>The clips' music features, the first <paramref name="features"/> of each frame: [B, T, F].</summary>
    static Tensor Music(DanceClip[] clips, int features) =>
        Frames(clips, clip => clip.Music, features);

    /// <summary>The clips' poses: [B, T, J·3].</summary>
    static Tensor Poses(DanceClip[] clips) => Frames(clips, clip => clip.Pose, clips[0].Pose[0].Length);

    static Tensor Frames(DanceClip[] clips, Func<DanceClip, float[][]> of, int width)
    {
        int frames = of(clips[0]).Length;
        var values = new float[clips.Length * frames * width];
        for (int i = 0; i < clips.Length; i++)
            for (int t = 0; t < frames; t++) Array.Copy(of(clips[i])[t], 0, values, (i * frames + t) * width, width);
        return tensor(values).view(clips.Length, frames, width);
    }
}
