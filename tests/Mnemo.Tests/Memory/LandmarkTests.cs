using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Memory.Landmark;
using Mnemo.Models;
using Mnemo.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// Landmark attention: the grouped softmax (training form) and the top-k retrieval form equal a per-query reference
/// that spells the groups out; with every block retrieved the inference form is the training form; a landmark model
/// streams like its full forward.
/// </summary>
[Collection(TorchCollection.Name)]
public class LandmarkTests
{
    /// <summary>
    /// One query at a time, as the paper states it: the outer softmax over the own block's tokens up to the query and
    /// the landmarks of the chosen earlier blocks (all of them, or the topK best by landmark score), each landmark's
    /// weight spread over its block's tokens by their own softmax. o [B, H, T, Dh]. With <paramref name="rotary"/>, q and
    /// k are unrotated: the chosen blocks (by unrotated landmark scores) are rotated at consecutive slots in sequence
    /// order, the own block and the query right after them.
    /// </summary>
    static Tensor Reference(Tensor q, Tensor k, Tensor v, int block, long past, int topK, bool rotary = false)
    {
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], m = block + 1;
        double scale = Math.Pow(q.shape[3], -0.5);
        var rows = new List<Tensor>();
        for (long bb = 0; bb < b; bb++)
            for (long hh = 0; hh < h; hh++)
                for (long i = 0; i < t; i++)
                {
                    long position = past + i, own = position / m;
                    Tensor Raw(long j) => (q[bb, hh, i] * k[bb, hh, j]).sum() * scale;
                    var earlier = Enumerable.Range(0, (int)own).Select(g => (long)g).ToList();
                    if (topK > 0)
                        earlier = earlier.OrderByDescending(g => Raw(g * m + block).item<double>()).Take(topK).Order().ToList();
                    // Where each key sits: slot s for the s-th chosen block, the own block after them.
                    long Slot(long j) => j / m == own ? earlier.Count * m + j % m : earlier.IndexOf(j / m) * m + j % m;
                    Tensor At(Tensor x, long p) => rotary ? RotaryEmbedding.ApplyAt(x, tensor((double)p)) : x;
                    var query = At(q[bb, hh, i], Slot(position));
                    Tensor Score(long j) => (query * At(k[bb, hh, j], Slot(j))).sum() * scale;
                    var ownKeys = Enumerable.Range((int)(own * m), (int)(position - own * m + 1)).Select(j => (long)j)
                        .Where(j => j % m != block).ToList();
                    var outer = stack(earlier.Select(g => Score(g * m + block)).Concat(ownKeys.Select(Score)).ToArray()).softmax(0);
                    var o = zeros_like(v[bb, hh, 0]);
                    for (int n = 0; n < earlier.Count; n++)
                    {
                        var tokens = Enumerable.Range(0, block).Select(j => earlier[n] * m + j).ToList();
                        var inner = stack(tokens.Select(Score).ToArray()).softmax(0);
                        for (int j = 0; j < tokens.Count; j++) o = o + outer[n] * inner[j] * v[bb, hh, tokens[j]];
                    }
                    for (int j = 0; j < ownKeys.Count; j++) o = o + outer[earlier.Count + j] * v[bb, hh, ownKeys[j]];
                    rows.Add(o);
                }
        return stack(rows).view(b, h, t, -1);
    }

    static (Tensor Q, Tensor K, Tensor V) Inputs(long t, long past, long d, int seed, ScalarType dtype = ScalarType.Float64)
    {
        var gen = new Generator((ulong)seed);
        Tensor Draw(long n) => (randn([2, 2, n, d], float64, generator: gen) * 1.5).to(dtype).requires_grad_(true);
        return (Draw(t), Draw(past + t), Draw(past + t));
    }

    static Tensor[] Grads(Tensor o, Tensor q, Tensor k, Tensor v)
    {
        var dO = randn(o.shape, float64, generator: new Generator(7)).to(o.dtype);
        return torch.autograd.grad([o], [q, k, v], [dO]).ToArray();
    }

    static void AssertClose(Tensor[] expected, Tensor[] actual, double tolerance, string label)
    {
        string[] names = ["o", "dq", "dk", "dv"];
        for (int n = 0; n < expected.Length; n++)
        {
            double e = Equivalence.RelativeRms(actual[n], expected[n]);
            Assert.True(e <= tolerance, $"{label} {names[n]}: relative RMS {e:E2} > {tolerance:E0}");
        }
    }

    static Tensor[] With(Func<Tensor, Tensor, Tensor, Tensor> form, (Tensor Q, Tensor K, Tensor V) x)
    {
        var o = form(x.Q, x.K, x.V);
        return [o.detach(), .. Grads(o, x.Q, x.K, x.V)];
    }

    public static TheoryData<long, long, int, int> Shapes => new()
    {
        { 23, 0, 4, 5 },     // T not a multiple of the block span 5; the last block partial
        { 9, 13, 3, 4 },     // queries continuing a stream (13 cached positions), starting inside a block
        { 7, 0, 8, 64 },     // one partial block: plain causal attention
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void The_grouped_softmax_equals_the_per_query_groups(long t, long past, int block, int queryChunk)
    {
        using var scope = NewDisposeScope();
        var x = Inputs(t, past, 6, seed: (int)t);
        var expected = With((q, k, v) => Reference(q, k, v, block, past, 0), x);
        AssertClose(expected, With((q, k, v) => GroupedSoftmax.Dense(q, k, v, block, past).O, x), 1e-10, "dense fp64");
        AssertClose(expected, With((q, k, v) => GroupedSoftmax.Retrieve(q, k, v, block, past, 1000, queryChunk), x), 1e-10,
            "retrieve all fp64");
        var x32 = Inputs(t, past, 6, seed: (int)t, ScalarType.Float32);
        AssertClose(expected, With((q, k, v) => GroupedSoftmax.Dense(q, k, v, block, past).O, x32), 1e-5, "dense fp32");
        AssertClose(expected, With((q, k, v) => GroupedSoftmax.Retrieve(q, k, v, block, past, 1000, queryChunk), x32), 1e-5,
            "retrieve all fp32");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Top_k_retrieval_equals_the_per_query_groups_of_the_best_blocks(int topK)
    {
        using var scope = NewDisposeScope();
        var x = Inputs(31, 0, 5, seed: 3);
        var expected = With((q, k, v) => Reference(q, k, v, 3, 0, topK), x);
        AssertClose(expected, With((q, k, v) => GroupedSoftmax.Retrieve(q, k, v, 3, 0, topK, queryChunk: 8), x), 1e-10, $"top {topK}");
        var even = Inputs(31, 0, 6, seed: 4);                                             // rotary needs an even head size
        var rotated = With((q, k, v) => Reference(q, k, v, 3, 0, topK, rotary: true), even);
        AssertClose(rotated, With((q, k, v) => GroupedSoftmax.Retrieve(q, k, v, 3, 0, topK, queryChunk: 8,
            rotate: (y, p) => RotaryEmbedding.ApplyAt(y, p)), even), 1e-10, $"top {topK}, rotary slots");
        var all = With((q, k, v) => Reference(q, k, v, 3, 0, 0), x);
        Assert.True(Equivalence.RelativeRms(expected[0], all[0]) > 1e-3, "retrieving fewer blocks changed nothing");
    }

    [Fact]
    public void Weights_sum_to_one_never_reach_a_landmark_or_the_future()
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = Inputs(17, 0, 4, seed: 2);
        var weights = GroupedSoftmax.Dense(q, k, v, 3, 0).Weights;                        // [B, H, T, T]
        Assert.True((weights.sum(-1) - 1).abs().max().item<double>() < 1e-12);
        for (long j = 3; j < 17; j += 4) Assert.Equal(0, weights.select(-1, j).abs().max().item<double>());
        Assert.Equal(0, weights.triu(1).abs().max().item<double>());
    }

    static ModelConfig Config(int block, int topK) => TinyModels.Config(MixerKind.Attention,
        c => c with { Attention = new AttentionConfig { LandmarkBlock = block, LandmarkTopK = topK } });

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void A_landmark_model_streams_like_its_full_forward(int topK)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(Config(4, topK));
        model.eval();
        var x = TinyModels.Tokens(2, 30);
        var full = model.forward(x);                                                      // [B, T, V]: the input's tokens only
        Assert.Equal(new long[] { 2, 30, 40 }, full.shape);
        using var cache = model.NewCache();
        double error = Equivalence.RelativeRms(TinyModels.Streamed(model, x, 9, cache), full);   // a prompt ending inside a block
        Assert.True(error <= 1e-10, $"top {topK}: streamed vs full {error:E2}");
        // The cache holds every position the layers saw: the 30 tokens and the 7 landmarks after every 4th.
        Assert.All(cache.Layers, layer => Assert.Equal(30 + 30 / 4, layer.KvLength));
    }

    [Fact]
    public void With_every_block_retrieved_inference_is_the_trained_form()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = TinyModels.Tokens(2, 26);
        var trained = TinyModels.Build(Config(4, 0));
        var all = TinyModels.Build(Config(4, 1000));
        var few = TinyModels.Build(Config(4, 1));
        trained.train();
        var reference = trained.forward(x);
        all.eval();
        few.eval();
        Assert.True(Equivalence.RelativeRms(all.forward(x), reference) <= 1e-10);
        Assert.True(Equivalence.RelativeRms(few.forward(x), reference) > 1e-6, "top-1 retrieval changed nothing");
        var plain = TinyModels.Build(TinyModels.Config(MixerKind.Attention));
        Assert.True(Equivalence.RelativeRms(plain.forward(x), reference) > 1e-6, "the landmarks changed nothing");
    }

    [Fact]
    public void Recorded_weights_are_between_the_inputs_tokens()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(Config(4, 0));
        model.eval();
        var (_, attention) = model.MixersOf<Attention>()[0];
        attention.RecordWeights = true;
        model.forward(TinyModels.Tokens(1, 13));
        var weights = attention.Weights!;                                                 // 13 tokens; 3 landmarks left out
        Assert.Equal(new long[] { 1, 2, 13, 13 }, weights.shape);
        Assert.True((weights.sum(-1) - 1).abs().max().item<double>() < 1e-12);
        Assert.Equal(0, weights.triu(1).abs().max().item<double>());
        attention.RecordWeights = false;
        var topK = TinyModels.Build(Config(4, 2));
        topK.eval();
        topK.MixersOf<Attention>()[0].Mixer.RecordWeights = true;
        Assert.Throws<MnemoException>(() => topK.forward(TinyModels.Tokens(1, 13)));
    }

    [Fact]
    public void Landmarks_go_after_every_block_of_the_stream()
    {
        using var scope = NewDisposeScope();
        var h = arange(5, dtype: float64).view(1, 5, 1);
        var (extended, tokens) = Landmarks.Insert(h, full(1, 1, -1.0, float64), offset: 2, block: 3);
        // Input positions 2..6: landmarks follow positions 2 and 5 (the 3rd and 6th tokens of the stream).
        Assert.Equal(new double[] { 0, -1, 1, 2, 3, -1, 4 }, extended.view(-1).data<double>().ToArray());
        Assert.Equal(new long[] { 0, 2, 3, 4, 6 }, tokens.data<long>().ToArray());
        Assert.Equal(9, Landmarks.Extended(7, 3));
    }

    [Fact]
    public void Landmark_settings_that_cannot_work_are_refused()
    {
        var errors = Config(4, 0) with { Mixer = MixerKind.GatedDeltaNet };
        Assert.Contains(errors.Validate(), e => e.Item1 == "attention.landmark_block" && e.Item2.Contains("attention layer"));
        var window = Config(4, 0) with { Attention = new AttentionConfig { LandmarkBlock = 4, Window = 8 } };
        Assert.Contains(window.Validate(), e => e.Item2.Contains("window 8"));
        var learned = Config(4, 0) with { Positions = PositionKind.Learned };
        Assert.Contains(learned.Validate(), e => e.Item2.Contains("rope or none"));
    }
}
