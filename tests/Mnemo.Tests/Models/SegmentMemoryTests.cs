using System.Text.Json.Nodes;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// RMT and HMT around a backbone: the whole pass against the recurrence written out here segment by segment, streaming
/// against the whole pass, HMT's cache bound and read-ahead, the depth of truncated backpropagation, and the config rules.
/// </summary>
[Collection(TorchCollection.Name)]
public class SegmentMemoryTests
{
    const int L = 5;                                                   // tokens per segment

    static LanguageModel Model(SegmentMemoryKind kind, MixerKind mixer = MixerKind.Attention, int memoryTokens = 2,
        int sensory = 0, int cache = 100, int bptt = 0, double initStd = 0.02) =>
        TinyModels.Build(TinyModels.Config(mixer, c => c with
        {
            InitStd = initStd,
            Segments = new()
            {
                Kind = kind, Length = L, MemoryTokens = kind == SegmentMemoryKind.Hmt ? 1 : memoryTokens, SensoryTokens = sensory,
                Cache = cache, Bptt = bptt, SummaryFraction = 0.6, RecallDim = 6,
            },
        }));

    static Tensor Parameter(LanguageModel model, string name) =>
        model.named_parameters().Single(p => p.name == name).parameter;

    /// <summary>The segment recurrence written out directly: [read ‖ sensory ‖ segment ‖ read] per segment, the written
    /// memory carried (RMT) or cached and recalled by the summary of the segment's first tokens (HMT).</summary>
    static Tensor ByHand(LanguageModel model, Tensor tokens)
    {
        var c = model.Config.Segments;
        var backbone = model.Backbone;
        long b = tokens.shape[0], m = c.MemoryTokens;
        var read = Parameter(model, "segments.memory").unsqueeze(0).expand(b, -1, -1);
        var cached = new List<Tensor>();
        Tensor? sensory = null;
        var outputs = new List<Tensor>();
        for (long start = 0; start < tokens.shape[1]; start += L)
        {
            var segment = tokens.narrow(1, start, Math.Min(L, tokens.shape[1] - start));
            var x = backbone.Embed(segment);
            if (c.Kind == SegmentMemoryKind.Hmt && cached.Count > 0)
            {
                var memories = stack(cached.TakeLast(c.Cache).ToArray(), 1);                         // [B, n, D]
                var t = Parameter(model, "segments.recall.summary").unsqueeze(0).expand(b, -1, -1);
                int j = (int)Math.Min(Math.Round(c.SummaryFraction * L), segment.shape[1]);
                var s = backbone.ForwardEmbedded(cat([t, x.narrow(1, 0, j), t], 1)).select(1, -1);     // [B, D]
                var q = s.matmul(Parameter(model, "segments.recall.q_proj.weight").T);                 // [B, d_r]
                var k = memories.matmul(Parameter(model, "segments.recall.k_proj.weight").T);          // [B, n, d_r]
                var w = (k.matmul(q.unsqueeze(-1)).squeeze(-1) / Math.Sqrt(c.RecallDim)).softmax(-1);   // [B, n]
                read = (w.unsqueeze(-1) * memories).sum(1, keepdim: true);                            // [B, 1, D]
            }
            var input = sensory is null ? cat([read, x, read], 1) : cat([read, backbone.Embed(sensory), x, read], 1);
            var h = backbone.ForwardEmbedded(input);
            long before = m + (sensory?.shape[1] ?? 0);
            outputs.Add(h.narrow(1, before, segment.shape[1]));
            var written = h.narrow(1, h.shape[1] - m, m);
            if (c.Kind == SegmentMemoryKind.Hmt) cached.Add(written.squeeze(1));
            else read = written;
            if (c.SensoryTokens > 0) sensory = segment.narrow(1, segment.shape[1] - c.SensoryTokens, c.SensoryTokens);
        }
        return cat(outputs, 1);
    }

    [Theory]
    [InlineData(SegmentMemoryKind.Rmt, MixerKind.Attention, 0, 100, 17)]
    [InlineData(SegmentMemoryKind.Rmt, MixerKind.GatedDeltaNet, 2, 100, 15)]
    [InlineData(SegmentMemoryKind.Hmt, MixerKind.Attention, 2, 100, 23)]
    [InlineData(SegmentMemoryKind.Hmt, MixerKind.Attention, 0, 2, 21)]
    public void Whole_pass_is_the_segment_recurrence(SegmentMemoryKind kind, MixerKind mixer, int sensory, int cache, long length)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Model(kind, mixer, sensory: sensory, cache: cache);
        var tokens = TinyModels.Tokens(2, length);
        var hidden = model.Hidden(tokens);
        Assert.Equal([2, length, 16], hidden.shape);
        Assert.True(Equivalence.RelativeRms(hidden, ByHand(model, tokens)) <= 1e-12, $"{kind} over {mixer}, length {length}");
    }

    [Theory]
    [InlineData(MixerKind.Attention, 0)]
    [InlineData(MixerKind.GatedDeltaNet, 2)]
    public void Rmt_streamed_in_any_pieces_equals_the_whole_pass(MixerKind mixer, int sensory)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Model(SegmentMemoryKind.Rmt, mixer, sensory: sensory);
        var tokens = TinyModels.Tokens(2, 23);
        using var cache = model.NewCache();
        var streamed = TinyModels.Streamed(model, tokens, 7, cache);                    // a 7-token prompt, then token by token
        Assert.True(Equivalence.RelativeRms(streamed, model.forward(tokens)) <= 1e-12, $"{mixer}");
        Assert.Equal(23, cache.Position);
        Assert.True(Equivalence.RelativeRms(MqarEvaluator.Streamed(model, tokens, 3), model.forward(tokens)) <= 1e-12, "3-token pieces");
        Assert.Equal(4, cache.Segments!.Segments);
        Assert.Equal([2, 3], cache.Segments.Pending!.shape);                           // 23 = 4·5 + 3
    }

    [Fact]
    public void Hmt_streamed_segment_by_segment_equals_the_whole_pass_and_reads_ahead_within_a_segment()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Model(SegmentMemoryKind.Hmt, sensory: 1, initStd: 0.5);          // memories and recall far from uniform
        var tokens = TinyModels.Tokens(2, 22);
        var whole = model.forward(tokens);
        using (var cache = model.NewCache())
        {
            // pieces of one, two and one segment and the last partial one (2 tokens)
            var pieces = new[] { (0, 5), (5, 10), (15, 5), (20, 2) }.Select(p => model.Step(tokens.narrow(1, p.Item1, p.Item2), cache));
            Assert.True(Equivalence.RelativeRms(cat(pieces.ToArray(), 1), whole) <= 1e-12, "segment by segment");
        }
        using (var cache = model.NewCache())
        {
            // Token by token, a position sees the summary of the tokens that have arrived: the whole pass's summary reads
            // round(0.6·5) = 3 tokens, so positions 0 and 1 of a segment differ once the cache holds two memories to choose
            // between (from the third segment on; a cache of one is recalled whatever the summary), and the rest agree. The
            // last segment has 2 tokens, so the whole pass's summary reads those 2, and only its position 0 differs.
            var streamed = TinyModels.Streamed(model, tokens, 1, cache);
            for (long t = 0; t < 22; t++)
            {
                double error = Equivalence.RelativeRms(streamed.select(1, t), whole.select(1, t));
                long summary = Math.Min(3, 22 - t / L * L);                             // tokens the whole pass's summary reads
                if (t >= 2 * L && t % L < summary - 1)
                    Assert.True(error > 1e-6, $"position {t} reads ahead in the whole pass ({error:E2})");
                else Assert.True(error <= 1e-12, $"position {t}: {error:E2}");
            }
        }
    }

    [Fact]
    public void Hmt_cache_holds_at_most_the_last_n_memories()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Model(SegmentMemoryKind.Hmt, cache: 3);
        using var cache = model.NewCache();
        var tokens = TinyModels.Tokens(1, 40);
        var written = new List<Tensor>();
        for (long start = 0; start < 40; start += L)
        {
            model.Step(tokens.narrow(1, start, L), cache);
            var held = cache.Segments!.Cache!;
            Assert.Equal(Math.Min(3, start / L + 1), held.shape[1]);
            written.Add(held.select(1, -1).clone());
        }
        var last3 = stack(written.TakeLast(3).ToArray(), 1);                           // the newest three, oldest first
        Assert.True(Equivalence.RelativeRms(cache.Segments!.Cache!, last3) <= 0, "the cache is the last three written");
        Assert.Null(cache.Segments.Memory);
    }

    [Theory]
    [InlineData(SegmentMemoryKind.Rmt, 0, new[] { true, true, true })]
    [InlineData(SegmentMemoryKind.Rmt, 4, new[] { true, true, true })]
    [InlineData(SegmentMemoryKind.Rmt, 2, new[] { false, false, true })]
    [InlineData(SegmentMemoryKind.Rmt, 1, new[] { false, false, false })]
    [InlineData(SegmentMemoryKind.Hmt, 0, new[] { true, true, true })]
    [InlineData(SegmentMemoryKind.Hmt, 2, new[] { false, false, true })]
    public void Gradients_reach_back_to_the_start_of_the_truncation_block(SegmentMemoryKind kind, int bptt, bool[] reached)
    {
        using var scope = NewDisposeScope();
        var model = Model(kind, bptt: bptt);
        // Four segments whose tokens are disjoint (segment s uses tokens 10s … 10s + 4); the loss reads only the last.
        var tokens = (arange(4).repeat_interleave(L) * 10 + arange(L).repeat(4)).unsqueeze(0);  // [1, 20]
        model.Hidden(tokens).narrow(1, 3 * L, L).pow(2).sum().backward();
        var grad = Parameter(model, "model.embeddings.weight").grad!;
        for (int s = 0; s < 3; s++)
        {
            bool nonzero = grad.narrow(0, 10 * s, L).abs().sum().item<double>() > 0;
            Assert.True(nonzero == reached[s], $"{kind}, bptt {bptt}: segment {s} {(nonzero ? "gets" : "gets no")} gradient");
        }
        Assert.True(grad.narrow(0, 30, L).abs().sum().item<double>() > 0, "the scored segment's own tokens");
    }

    [Theory]
    [InlineData(SegmentMemoryKind.Rmt)]
    [InlineData(SegmentMemoryKind.Hmt)]
    public void Every_parameter_learns_and_streaming_keeps_live_tensors_flat(SegmentMemoryKind kind)
    {
        using (var scope = NewDisposeScope())
        {
            var model = Model(kind, sensory: 2).to(float32);
            model.forward(TinyModels.Tokens(2, 17)).log_softmax(-1).select(-1, 3).mean().backward();
            TinyModels.AssertEveryParameterHasAGradient(model, kind.ToString());
        }
        TinyModels.AssertStreamingKeepsLiveTensorsFlat(Model(kind, sensory: 2), pieces: 20, settledAfter: 8);
    }

    [Fact]
    public void A_layer_holds_at_most_one_segment_and_its_memory()
    {
        var c = TinyModels.Config(MixerKind.Attention,
            c => c with { Segments = new() { Kind = SegmentMemoryKind.Rmt, Length = 16, MemoryTokens = 4 } });
        Assert.Equal(2L * 24 * 16, c.StateFloatsPerLayer(2048));                       // K and V of [4 ‖ 16 ‖ 4] tokens
        Assert.Equal(2L * 10 * 16, c.StateFloatsPerLayer(10));
        Assert.Equal(2L * 2048 * 16, (c with { Segments = new() }).StateFloatsPerLayer(2048));
    }

    [Theory]
    [InlineData("""{"segments": {"kind": "hmt", "memory_tokens": 2}}""", "segments.memory_tokens")]
    [InlineData("""{"segments": {"kind": "rmt"}, "attention": {"landmark_block": 8}}""", "segments.kind")]
    [InlineData("""{"segments": {"kind": "rmt"}, "mixer": "prefix_linear_attention"}""", "segments.kind")]
    [InlineData("""{"segments": {"kind": "rmt", "length": 64}, "positions": "learned", "max_positions": 64}""", "max_positions")]
    [InlineData("""{"segments": {"kind": "rmt", "length": 0}}""", "segments.length")]
    public void Bad_configs_name_the_field(string json, string field)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigBinder.Bind<ModelConfig>(JsonNode.Parse(json)!, "test"));
        Assert.Contains($"\"{field}\"", error.Message);
    }
}
