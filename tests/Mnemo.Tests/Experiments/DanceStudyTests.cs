using Mnemo.Experiments;
using Mnemo.IO;

namespace Mnemo.Tests.Experiments;

/// <summary>The dance study: the beat scores by hand, the true dance pauses on the music's beats at the clip's tempo, the
/// temporal indexes say what they claim, and a tiny study runs and repeats from its seed.</summary>
[Collection(TorchCollection.Name)]
public class DanceStudyTests
{
    [Fact]
    public void Beat_scores_match_hand_worked_values()
    {
        // 10 hits 11 and 20 hits 21; 33 is 3 frames from 30, outside ±2: P = R = 2/3
        var (f, align) = DanceStudy.BeatScores([10, 20, 33], [11, 21, 30], 2);
        Assert.Equal(2 / 3.0, f, 12);
        Assert.Equal((2 * Math.Exp(-1 / 18.0) + Math.Exp(-9 / 18.0)) / 3, align, 12);
        Assert.Equal(1.0, DanceStudy.BeatScores([5], [5], 0).F);
        Assert.Equal(2 * 0.5 * 1 / 1.5, DanceStudy.BeatScores([5, 6], [5], 2).F, 12);        // one music beat is hit once
        Assert.Equal((0.0, 0.0), DanceStudy.BeatScores([], [3, 9], 2));
    }

    [Fact]
    public void Motion_beats_are_the_pauses_of_a_moving_skeleton()
    {
        // x(t) = t − sin(2πt/10)·10/(2π): speed 1 − cos(2πt/10), zero every 10 frames
        var pose = Enumerable.Range(0, 60)
            .Select(t => new[] { (float)(t - Math.Sin(2 * Math.PI * t / 10) * 10 / (2 * Math.PI)) }).ToArray();
        var beats = DanceStudy.MotionBeats(pose);
        // the speed is sampled between frames t − 1 and t, so a pause at frame 10 shows at 10 or 11
        Assert.True(beats.All(b => b % 10 is 0 or 1), $"beats at {string.Join(", ", beats)}");
        Assert.InRange(beats.Length, 5, 6);
        Assert.Empty(DanceStudy.MotionBeats([.. Enumerable.Range(0, 30).Select(_ => new[] { 1f, 2f })]));   // standing still
    }

    [Fact]
    public void The_true_dance_pauses_on_the_beats_at_the_clips_tempo()
    {
        var c = new DanceMotionConfig { Frames = 250 };
        var clips = new DanceMotion(c, 4).Generate(40, 5);
        foreach (var clip in clips)
        {
            double period = 60.0 * c.Fps / clip.Bpm;
            Assert.InRange(clip.Beats.Zip(clip.Beats.Skip(1)).Average(p => p.Second - p.First), period - 0.6, period + 0.6);
            Assert.True(DanceStudy.BeatScores(DanceStudy.MotionBeats(clip.Pose), clip.Beats, 2).F > 0.9, $"{clip.Style} at {clip.Bpm:F0}");
            Assert.All(clip.Music, f => Assert.Equal(DanceMotion.Acoustic + DanceMotion.Indexes, f.Length));
            // the beat flag (second index) marks exactly the beat frames
            Assert.Equal(clip.Beats, Enumerable.Range(0, c.Frames).Where(t => clip.Music[t][DanceMotion.Acoustic + 1] == 1));
        }
        Assert.Equal(4, clips.Select(x => x.Style).Distinct().Count());
        Assert.Equal(clips[3].Pose[17], new DanceMotion(c, 4).Generate(40, 5)[3].Pose[17]);
    }

    [Fact]
    public void A_tiny_study_runs_beats_the_mean_pose_and_the_same_seed_repeats_it()
    {
        var c = DanceConfig.Load(null, ["motion.train_clips=40", "motion.test_clips=10", "motion.frames=60", "mixers=[lstm]",
            "temporal_indexes=[true]", "model.d_model=16", "model.num_layers=1", "training.steps=60", "training.warmup_steps=5",
            "training.batch_size=8"]);
        var (runs, example) = DanceStudy.Run(c, [2]);
        Assert.Equal(["truth", "mean pose", "lstm"], runs.Select(r => r.Generator));
        Assert.True(runs[0].BeatF > 0.9 && runs[0].Mse == 0);
        Assert.Equal(0, runs[1].BeatF);
        Assert.True(runs[2].Mse < runs[1].Mse, $"the generator ({runs[2].Mse:F4}) beats the mean pose ({runs[1].Mse:F4})");
        Assert.Equal(2, example.Tracks.Count);
        Assert.Equal(runs.Select(r => r with { Seconds = 0 }), DanceStudy.Run(c, [2]).Runs.Select(r => r with { Seconds = 0 }));
        Assert.Contains("model.rnn.bidirectional",
            Assert.Throws<ConfigException>(() => DanceConfig.Load(null, ["model.rnn.bidirectional=true"])).Message);
    }
}
