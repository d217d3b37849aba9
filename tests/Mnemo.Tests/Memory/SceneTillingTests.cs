using Mnemo.Memory.Episodic;

namespace Mnemo.Tests.Memory;

/// <summary>SceneTilling's depth scores by hand, and the scene changes it finds in streams with planted scenes.</summary>
public class SceneTillingTests
{
    [Fact]
    public void Depth_adds_the_climb_on_each_side_of_a_dip()
    {
        // s = 0.9 0.8 0.3 0.7 0.95 0.6: at the dip (gap 2) the left climb reaches 0.9, the right 0.95.
        double[] s = [0.9, 0.8, 0.3, 0.7, 0.95, 0.6];
        var d = SceneTilling.Depths(s);
        Assert.Equal(0.9 + 0.95 - 2 * 0.3, d[2], 12);
        Assert.Equal(0.9 + 0.8 - 2 * 0.8, d[1], 12);                                    // left climbs to 0.9; right falls at once
        Assert.Equal(0.0, d[0], 12);
        Assert.Equal(0.95 + 0.6 - 2 * 0.6, d[5], 12);                                   // the last gap: left to 0.95, no right
    }

    /// <summary>Scenes of 6–14 frames, each around its own random direction in 16 dimensions, with noise.</summary>
    static (List<float[]> Frames, int[] Starts) Planted(int scenes, int seed, double noise = 0.15)
    {
        var random = new Random(seed);
        var frames = new List<float[]>();
        var starts = new List<int>();
        for (int scene = 0; scene < scenes; scene++)
        {
            if (scene > 0) starts.Add(frames.Count);
            var centre = Enumerable.Range(0, 16).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            int length = random.Next(6, 15);
            for (int f = 0; f < length; f++)
                frames.Add(centre.Select(c => (float)(c + noise * (random.NextDouble() * 2 - 1))).ToArray());
        }
        return (frames, starts.ToArray());
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(6, 2)]
    [InlineData(12, 3)]
    public void Planted_scene_changes_are_recovered(int scenes, int seed)
    {
        var (frames, starts) = Planted(scenes, seed);
        Assert.Equal(starts, SceneTilling.Boundaries(frames, alpha: 0.5, maxScenes: 15));
    }

    [Fact]
    public void At_most_max_scenes_are_made_from_the_deepest_changes()
    {
        var (frames, starts) = Planted(8, 4);
        var depths = SceneTilling.Depths(SceneTilling.Similarities(frames));
        var deepest = starts.OrderByDescending(b => depths[b - 1]).Take(2).Order().ToArray();
        Assert.Equal(deepest, SceneTilling.Boundaries(frames, maxScenes: 3));
        Assert.Empty(SceneTilling.Boundaries([new float[] { 1, 2 }]));
    }
}
