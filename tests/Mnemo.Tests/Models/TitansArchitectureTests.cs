using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>Titans' MAC, MAG and MAL mixers: streaming ≡ full forward across segment boundaries, causality,
/// gradients, persistent tokens, flat memory while streaming, and a few training steps.</summary>
[Collection(TorchCollection.Name)]
public class TitansArchitectureTests
{
    public static TheoryData<MixerKind> Kinds => new(MixerKind.TitansMac, MixerKind.TitansMag, MixerKind.TitansMal);

    /// <summary>Segment 5 and memory chunk 3 put several boundaries inside short sequences; a window of 6 for MAG/MAL.</summary>
    static ModelConfig Config(MixerKind mixer) => new()
    {
        Mixer = mixer, VocabSize = 40, DModel = 16, NumHeads = 2, NumLayers = 2, MlpRatio = 2,
        Titans = new() { SegmentSize = 5, PersistentTokens = 3 }, Deep = new() { ChunkSize = 3 }, Attention = new() { Window = 6 },
    };

    static LanguageModel Build(ModelConfig c, bool fp64 = true)
    {
        TorchRuntime.Seed(5);
        var model = new LanguageModel(c);
        if (fp64) model.to(float64);
        return model;
    }

    static Tensor Tokens(long b, long t, int seed = 9) => randint(0, 40, [b, t], generator: new Generator((ulong)seed));

    static Tensor Streamed(LanguageModel model, Tensor x, long[] pieces)
    {
        using var cache = model.NewCache();
        var outputs = new List<Tensor>();
        long at = 0;
        foreach (var n in pieces)
        {
            outputs.Add(model.Step(x.narrow(1, at, n), cache));
            at += n;
        }
        Assert.Equal(x.shape[1], cache.Position);
        return cat(outputs, 1);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Streaming_equals_the_full_forward_across_segments(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Config(mixer));
        var x = Tokens(2, 17);                                      // 17: not a multiple of the segment (5) or chunk (3)
        var full = model.forward(x);
        long[][] splits =
        [
            Enumerable.Repeat(1L, 17).ToArray(),                    // token by token
            [7, 1, 1, 4, 4],                                        // a prompt ending mid-segment, pieces across boundaries
        ];
        foreach (var split in splits)
        {
            double error = Equivalence.RelativeRms(Streamed(model, x, split), full);
            Assert.True(error <= 1e-10, $"{mixer} [{string.Join(",", split)}]: {error:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Outputs_do_not_depend_on_later_tokens(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Config(mixer));
        var x = Tokens(2, 16);
        var a = model.forward(x);
        foreach (long cut in new long[] { 3, 5, 12 })              // mid-segment, at a segment start, late
        {
            var y = x.clone();
            y[.., (int)cut..] = (y[.., (int)cut..] + 1) % 40;
            var b = model.forward(y);
            Assert.True(Equivalence.RelativeRms(a.narrow(1, 0, cut), b.narrow(1, 0, cut)) <= 1e-12, $"{mixer} cut {cut}");
            Assert.True(Equivalence.RelativeRms(a.narrow(1, cut, 16 - cut), b.narrow(1, cut, 16 - cut)) > 1e-3);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_parameter_receives_a_gradient(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        var model = Build(Config(mixer), fp64: false);
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.attn.persistent_memory", names);
        Assert.Contains("model.layers.0.attn.memory.memory_init.0", names);
        Assert.Contains("model.layers.0.attn.attention.q_proj.weight", names);
        Assert.DoesNotContain("model.layers.0.attn.attention.q_conv1d.weight", names);
        var logits = model.forward(Tokens(2, 13));
        nn.functional.cross_entropy(logits.reshape(-1, 40), Tokens(2, 13, seed: 3).reshape(-1)).backward();
        TinyModels.AssertEveryParameterHasAGradient(model, mixer.ToString());
    }

    [Fact]
    public void Mac_memory_carries_gradients_across_segments()
    {
        // The loss at the second segment only must reach the memory's write gates through the state the first
        // segment left (the full forward's scratch cache keeps the graph).
        using var scope = NewDisposeScope();
        var model = Build(Config(MixerKind.TitansMac) with { NumLayers = 1 }, fp64: false);
        var logits = model.forward(Tokens(1, 10));
        logits.narrow(1, 5, 1).sum().backward();
        var forget = model.named_parameters().Single(p => p.name == "model.layers.0.attn.memory.forget_proj.weight").parameter;
        Assert.True(forget.grad is not null && forget.grad.abs().sum().item<float>() > 0);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Persistent_tokens_change_the_output(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Config(mixer));
        var x = Tokens(1, 12);
        var before = model.forward(x);
        foreach (var (name, p) in model.named_parameters())
            if (name.EndsWith("persistent_memory")) p.add_(randn_like(p));
        var after = model.forward(x);
        // fp64 and the same computation otherwise: any change beyond rounding is P's. (Small weights at init keep
        // the mixers' share of the logits small, MAL's the smallest: P reaches it only through the memory.)
        double change = Equivalence.RelativeRms(after, before);
        Assert.True(change > 1e-8, $"{mixer}: {change:E2}");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Streaming_keeps_the_live_tensor_count_flat(MixerKind mixer) =>
        TinyModels.AssertStreamingKeepsLiveTensorsFlat(Build(Config(mixer), fp64: false), pieces: 14, promptEvery: 4, settledAfter: 5);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_tiny_model_learns(MixerKind mixer)
    {
        var model = Build(Config(mixer) with { NumLayers = 1, Titans = Config(mixer).Titans with { PersistentTokens = 2 } }, fp64: false);
        var x = Tokens(4, 12);
        var target = x.roll(1, 1);                                  // predict the previous token: needs the mixer
        using var optimizer = optim.AdamW(model.parameters(), lr: 1e-2);
        var losses = new List<float>();
        for (int step = 0; step < 12; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.forward(x).reshape(-1, 40), target.reshape(-1));
            loss.backward();
            optimizer.step();
            losses.Add(loss.item<float>());
        }
        Assert.True(losses[^1] < 0.8 * losses[0], $"{mixer}: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void Config_names_are_snake_case()
    {
        var run = Mnemo.IO.ConfigBinder.Bind<ModelConfig>(System.Text.Json.Nodes.JsonNode.Parse(
            """{"mixer": "titans_mac", "layer_mixers": ["titans_mag", "titans_mal"],""" +
            """ "num_layers": 2, "titans": {"persistent_tokens": 2, "segment_size": 8}}"""),
            "test");
        Assert.Equal(MixerKind.TitansMac, run.Mixer);
        Assert.Equal([MixerKind.TitansMag, MixerKind.TitansMal], run.LayerMixers);
        Assert.Equal((2, 8), (run.Titans.PersistentTokens, run.Titans.SegmentSize));
    }
}
