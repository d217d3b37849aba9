using Mnemo.Memory.Episodic;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>The memory bridge: streaming segment by segment equals reading the whole stream, the cache, and where
/// retrieval reads from.</summary>
[Collection(TorchCollection.Name)]
public class MemoryBridgeTests
{
    static MemoryBridge Bridge(bool retrieval)
    {
        TorchRuntime.Seed(3);
        var bridge = new MemoryBridge(8, 2, 2, 3, retrieval);
        bridge.to(float64);
        bridge.eval();
        return bridge;
    }

    static Tensor Stream(long length) => randn([2, length, 8], float64, generator: new Generator(7));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Streaming_segment_by_segment_equals_reading_the_whole_stream(bool retrieval)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var bridge = Bridge(retrieval);
        var x = Stream(20);
        int[] starts = [4, 11, 12, 17];
        var whole = bridge.Read(x, starts);
        var state = new BridgeState();
        var edges = new[] { 0, 4, 11, 12, 17, 20 };
        for (int i = 0; i + 1 < edges.Length; i++)
        {
            var y = bridge.Segment(x.narrow(1, edges[i], edges[i + 1] - edges[i]), state);
            Assert.Equal([2, edges[i + 1] - edges[i], 8], y.shape);
        }
        Assert.Equal(5, state.Segments);
        Assert.Equal([2, 15, 8], state.Cache!.shape);                                  // 5 segments × 3 memory tokens
        Assert.True(Equivalence.RelativeRms(state.Memory!, whole.Memory!) <= 1e-12);
    }

    [Fact]
    public void Only_retrieval_lets_an_early_memory_reach_past_the_next_segment_directly()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // Changing the first segment changes the final memory either way (the memory is carried); with retrieval the
        // final memory also depends on the cache itself: replacing the cache before the last segment changes it.
        foreach (bool retrieval in new[] { false, true })
        {
            var bridge = Bridge(retrieval);
            var x = Stream(12);
            var state = bridge.Read(x.narrow(1, 0, 8), [4]);
            var kept = new BridgeState { Memory = state.Memory, Cache = state.Cache };
            var altered = new BridgeState { Memory = state.Memory, Cache = state.Cache! * 3 };
            var last = x.narrow(1, 8, 4);
            bridge.Segment(last, kept);
            bridge.Segment(last, altered);
            double change = Equivalence.RelativeRms(altered.Memory!, kept.Memory!);
            Assert.True(retrieval ? change > 1e-3 : change == 0, $"retrieval {retrieval}: {change:E2}");
        }
    }

    [Fact]
    public void Scene_changes_become_segments()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // Three scenes of 5 frames along three axes: SceneTilling cuts at 5 and 10, and the bridge reads three segments.
        var frames = Enumerable.Range(0, 15).Select(i => Enumerable.Range(0, 8).Select(d => d == i / 5 ? 1f : 0.01f * (i % 5)).ToArray())
            .ToList();
        var starts = SceneTilling.Boundaries(frames);
        Assert.Equal([5, 10], starts);
        var x = tensor(frames.SelectMany(f => f).ToArray(), [1, 15, 8]).to(float64);
        Assert.Equal(3, Bridge(true).Read(x, starts).Segments);
    }
}
