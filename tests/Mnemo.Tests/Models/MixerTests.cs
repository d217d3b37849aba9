using Mnemo.Layers;
using Mnemo.Memory.Matrix;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>Every token mixer inside the language model: fla names, causality, streaming ≡ full forward, gradients.</summary>
[Collection(TorchCollection.Name)]
public class MixerTests
{
    public static TheoryData<MixerKind> Mixers => new(Enum.GetValues<MixerKind>());

    static ModelConfig Config(MixerKind mixer, Func<ModelConfig, ModelConfig>? edit = null) => TinyModels.Config(mixer, edit);
    static LanguageModel Build(ModelConfig c, bool fp64 = true) => TinyModels.Build(c, fp64);
    static Tensor Tokens(long b, long t) => TinyModels.Tokens(b, t);

    [Fact]
    public void Gated_delta_net_parameters_have_fla_names_and_shapes()
    {
        var c = Config(MixerKind.GatedDeltaNet);
        var p = Build(c).named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        string at = "model.layers.0.attn.";
        Assert.Equal(new long[] { 16, 16 }, p[at + "q_proj.weight"]);
        Assert.Equal(new long[] { 16, 16 }, p[at + "k_proj.weight"]);
        Assert.Equal(new long[] { 16, 16 }, p[at + "v_proj.weight"]);
        Assert.Equal(new long[] { 2, 16 }, p[at + "a_proj.weight"]);
        Assert.Equal(new long[] { 2, 16 }, p[at + "b_proj.weight"]);
        Assert.Equal(new long[] { 2 }, p[at + "A_log"]);
        Assert.Equal(new long[] { 2 }, p[at + "dt_bias"]);
        Assert.Equal(new long[] { 16, 1, 4 }, p[at + "q_conv1d.weight"]);
        Assert.Equal(new long[] { 16, 16 }, p[at + "g_proj.weight"]);
        Assert.Equal(new long[] { 8 }, p[at + "o_norm.weight"]);
        Assert.Equal(new long[] { 16, 16 }, p[at + "o_proj.weight"]);
    }

    [Theory]
    [InlineData(MixerKind.GatedDeltaNet, true)]
    [InlineData(MixerKind.Titans, false)]
    [InlineData(MixerKind.Mom, true)]
    [InlineData(MixerKind.DeltaNet, false)]
    [InlineData(MixerKind.LinearAttention, false)]
    public void Output_gate_overrides_the_mechanisms_own_choice(MixerKind mixer, bool gatedByDefault)
    {
        bool Gated(bool? setting) => Build(Config(mixer, c => c with { OutputGate = setting })).named_parameters()
            .Any(p => p.name == "model.layers.0.attn.g_proj.weight");
        Assert.Equal(gatedByDefault, Gated(null));
        Assert.True(Gated(true));
        Assert.False(Gated(false));
        using var scope = NewDisposeScope();
        var logits = Build(Config(mixer, c => c with { OutputGate = !gatedByDefault })).forward(Tokens(2, 11));
        Assert.True(logits.isfinite().all().item<bool>());
    }

    /// <summary>
    /// The gate projections that ride through the joined q, k, v product (Gated DeltaNet's a_proj and b_proj, DeltaNet's
    /// b_proj) give what their own products give: the same model with a zero low-rank update on b_proj, which makes
    /// them run on their own, has the same logits and the same gradient for every parameter, in fp64.
    /// </summary>
    [Theory]
    [InlineData(MixerKind.GatedDeltaNet)]
    [InlineData(MixerKind.DeltaNet)]
    public void Riding_gate_projections_equal_their_own_products(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        var tokens = Tokens(2, 11);
        (Tensor Logits, Dictionary<string, Tensor> Grads) Run(bool own)
        {
            var model = Build(Config(mixer));
            if (own)
                foreach (var (name, module) in model.named_modules().Where(m => m.name.EndsWith("attn.b_proj")))
                    ((Projection)module).AddLowRank(rank: 1, alpha: 1);                    // its B starts at zero
            var logits = model.forward(tokens);
            logits.square().mean().backward();
            return (logits.detach(), model.named_parameters().Where(p => !p.name.Contains("lora"))
                .ToDictionary(p => p.name, p => p.parameter.grad!));
        }
        var (riding, ridingGrads) = Run(own: false);
        var (separate, separateGrads) = Run(own: true);
        Assert.True(Equivalence.RelativeRms(riding, separate) <= 1e-12, "logits");
        Assert.Equal(separateGrads.Keys.Order(), ridingGrads.Keys.Order());
        foreach (var (name, grad) in separateGrads)
            Assert.True(Equivalence.RelativeRms(ridingGrads[name], grad) <= 1e-12,
                $"{name}: {Equivalence.RelativeRms(ridingGrads[name], grad):E2}");
    }

    [Theory]
    [InlineData(MixerKind.GatedDeltaNet)]
    [InlineData(MixerKind.Mom)]
    [InlineData(MixerKind.Titans)]
    public void An_open_output_gate_starts_at_one_and_learns(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        var model = Build(Config(mixer, c => c with { OutputGate = true, OutputGateOpen = true }));
        var gates = model.named_parameters().Where(p => p.name.Contains(".g_proj.")).ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(4, gates.Count);                                                   // weight and bias, both layers
        foreach (var (name, p) in gates)
        {
            if (name.EndsWith("weight")) Assert.Equal(0.0, p.abs().max().item<double>());
            else Assert.True(nn.functional.silu(p).sub(1).abs().max().item<double>() < 1e-6, $"{name}: silu(bias) ≠ 1"); // set in fp32
        }
        model.forward(Tokens(2, 11)).square().mean().backward();
        Assert.All(gates, g => Assert.True(g.Value.grad!.abs().sum().item<double>() > 0, $"{mixer}: {g.Key} gets no gradient"));
    }

    [Theory]
    [InlineData(MixerKind.GatedDeltaNet, "model.layers.0.attn.dt_bias")]
    [InlineData(MixerKind.Mamba2, "model.layers.0.attn.dt_bias")]
    [InlineData(MixerKind.Mom, "model.layers.0.attn.dt_bias")]
    public void The_initial_decay_step_lies_in_dt_min_to_dt_max(MixerKind mixer, string name)
    {
        foreach (var (lo, hi) in new[] { (1e-3, 0.1), (1e-4, 1e-3), (0.01, 0.01) })
        {
            var c = Config(mixer, c => c with { Matrix = c.Matrix with { DtMin = lo, DtMax = hi }, NumHeads = 8, DModel = 32 });
            var dtBias = Build(c).named_parameters().Single(p => p.name == name).parameter;
            var dt = nn.functional.softplus(dtBias);                              // the step the bias encodes
            Assert.InRange(dt.min().ToDouble(), lo * (1 - 1e-5), hi * (1 + 1e-5));         // initialised in fp32
            Assert.InRange(dt.max().ToDouble(), lo * (1 - 1e-5), hi * (1 + 1e-5));
        }
        var bad = Config(mixer, c => c with { Matrix = c.Matrix with { DtMin = 0.2, DtMax = 0.1 } }).Matrix.Validate().ToList();
        Assert.Contains(bad, e => e.Item1 == "dt_min");
    }

    [Fact]
    public void Gdn2_and_comba_have_fla_names_and_shapes()
    {
        // d_model 16, 2 heads of 8: GDN-2's gates are per key channel (b_proj) and per value channel (w_proj), its decay
        // and output gate KDA's; Comba's gates are per head, with the inner decay d and the correction D per head.
        var gdn2 = Build(Config(MixerKind.Gdn2)).named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        var expected = new Dictionary<string, long[]>
        {
            ["b_proj.weight"] = [16, 16], ["w_proj.weight"] = [16, 16], ["f_proj.0.weight"] = [8, 16], ["f_proj.1.weight"] = [16, 8],
            ["g_proj.0.weight"] = [8, 16], ["g_proj.1.weight"] = [16, 8], ["g_proj.1.bias"] = [16], ["A_log"] = [2], ["dt_bias"] = [16],
        };
        foreach (var (name, shape) in expected) Assert.Equal(shape, gdn2["model.layers.1.attn." + name]);
        var comba = Build(Config(MixerKind.Comba)).named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        expected = new Dictionary<string, long[]>
        {
            ["a_proj.weight"] = [2, 16], ["b_proj.weight"] = [2, 16], ["decay"] = [2], ["D"] = [2], ["A_log"] = [2], ["dt_bias"] = [2],
            ["g_proj.weight"] = [16, 16], ["q_conv1d.weight"] = [16, 1, 4], ["o_norm.weight"] = [8],
        };
        foreach (var (name, shape) in expected) Assert.Equal(shape, comba["model.layers.0.attn." + name]);
    }

    [Fact]
    public void Rwkv7_has_fla_names_and_its_value_residual_on_later_layers_only()
    {
        // d_model 16, 2 heads of 8; LoRA ranks at fla's floor of 32. Layer 0 is the first rwkv7 layer: no v_lora.
        var model = Build(Config(MixerKind.Rwkv7), fp64: false);
        var shapes = model.named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        var expected = new Dictionary<string, long[]>
        {
            ["x_r"] = [16], ["x_w"] = [16], ["x_g"] = [16], ["k_k"] = [16], ["k_a"] = [16], ["r_k"] = [2, 8],
            ["r_proj.weight"] = [16, 16], ["o_proj.weight"] = [16, 16], ["w_lora.0.weight"] = [32, 16], ["w_lora.2.weight"] = [16, 32],
            ["w_lora.2.bias"] = [16], ["a_lora.2.bias"] = [16], ["g_lora.2.weight"] = [16, 32], ["g_norm.weight"] = [16],
            ["g_norm.bias"] = [16],
        };
        foreach (var (name, shape) in expected) Assert.Equal(shape, shapes["model.layers.1.attn." + name]);
        Assert.Equal(new long[] { 16 }, shapes["model.layers.1.attn.v_lora.2.bias"]);
        Assert.DoesNotContain("model.layers.0.attn.v_lora.0.weight", shapes.Keys);
        Assert.DoesNotContain("model.layers.1.attn.g_lora.2.bias", shapes.Keys);
        // RWKV-7's own starts survive the model's initialisation: r_k −0.04, k_a 1.02, the group norm's bias 0
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.True(p["model.layers.0.attn.r_k"].eq(-0.04).all().item<bool>());
        Assert.True(p["model.layers.0.attn.k_a"].eq(1.02).all().item<bool>());
        Assert.True(p["model.layers.1.attn.g_norm.bias"].eq(0).all().item<bool>());
    }

    [Fact]
    public void Other_rules_have_their_fla_parameters()
    {
        var gla = Build(Config(MixerKind.Gla)).named_parameters().Select(x => x.name).ToHashSet();
        Assert.Contains("model.layers.0.attn.gk_proj.0.weight", gla);
        Assert.Contains("model.layers.0.attn.gk_proj.1.bias", gla);
        var delta = Build(Config(MixerKind.DeltaNet)).named_parameters().Select(x => x.name).ToHashSet();
        Assert.Contains("model.layers.1.attn.b_proj.weight", delta);
        Assert.DoesNotContain("model.layers.1.attn.g_proj.weight", delta);
        var mamba = Build(Config(MixerKind.Mamba2)).named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        // d_inner 16, d_state 8, 2 heads: in_proj → 2·16 + 2·8 + 2 = 50; conv over x, B, C = 32 channels.
        Assert.Equal(new long[] { 50, 16 }, mamba["model.layers.0.attn.in_proj.weight"]);
        Assert.Equal(new long[] { 32, 1, 4 }, mamba["model.layers.0.attn.conv1d.weight"]);
        Assert.Equal(new long[] { 32 }, mamba["model.layers.0.attn.conv1d.bias"]);
        foreach (var n in new[] { "dt_bias", "A_log", "D" }) Assert.Equal(new long[] { 2 }, mamba["model.layers.0.attn." + n]);
        Assert.Equal(new long[] { 16 }, mamba["model.layers.0.attn.norm.weight"]);
        Assert.Equal(new long[] { 16, 16 }, mamba["model.layers.0.attn.out_proj.weight"]);
        // log-linear Gated DeltaNet: Gated DeltaNet's parameters (its base class's) and the authors' l_proj and L [H, levels]
        var logLinear = Build(Config(MixerKind.LogLinearGatedDeltaNet)).named_parameters()
            .ToDictionary(x => x.name, x => x.parameter.shape);
        foreach (var n in new[] { "a_proj.weight", "b_proj.weight", "A_log", "dt_bias", "q_proj.weight", "g_proj.weight", "l_proj.weight" })
            Assert.Contains("model.layers.0.attn." + n, logLinear.Keys);
        Assert.Equal(new long[] { 2, 15 }, logLinear["model.layers.0.attn.L"]);
        var hybrid = Build(Config(MixerKind.Attention, c => c with { LayerMixers = [MixerKind.GatedDeltaNet, MixerKind.Attention] }))
            .named_parameters().Select(x => x.name).ToHashSet();
        Assert.Contains("model.layers.0.attn.A_log", hybrid);
        Assert.DoesNotContain("model.layers.1.attn.A_log", hybrid);
    }

    [Theory]
    [MemberData(nameof(Mixers))]
    public void Streaming_token_by_token_equals_the_full_forward(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Config(mixer));
        var x = Tokens(2, 21);
        var full = model.forward(x);
        using var cache = model.NewCache();
        var streamed = TinyModels.Streamed(model, x, 6, cache);                       // a prompt, then single tokens
        Assert.True(Equivalence.RelativeRms(streamed, full) <= 1e-10, $"{mixer}: {Equivalence.RelativeRms(streamed, full):E2}");
        Assert.Equal(21, cache.Position);
    }

    [Theory]
    [InlineData(MixerKind.GatedDeltaNet)]
    [InlineData(MixerKind.Mamba2)]
    [InlineData(MixerKind.Attention)]
    public void Prefill_in_pieces_then_stepping_equals_the_full_forward(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Config(mixer));
        var x = Tokens(2, 23);
        var full = model.forward(x);
        using var cache = model.NewCache();
        model.Prefill(x.narrow(1, 0, 17), cache, pieceLength: 5);                 // 5 + 5 + 5 + 2 tokens
        Assert.Equal(17, cache.Position);
        var next = model.Step(x.narrow(1, 17, 6), cache);
        var expected = full.narrow(1, 17, 6);
        Assert.True(Equivalence.RelativeRms(next, expected) <= 1e-10, $"{mixer}: {Equivalence.RelativeRms(next, expected):E2}");
    }

    [Fact]
    public void Prefill_rejects_bad_input()
    {
        using var scope = NewDisposeScope();
        var model = Build(Config(MixerKind.GatedDeltaNet));
        using var cache = model.NewCache();
        var e = Assert.Throws<ArgumentException>(() => model.Prefill(Tokens(2, 8).flatten(), cache));
        Assert.Contains("[B, T]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Prefill(Tokens(2, 8), cache, pieceLength: 0));
        Assert.Equal(0, cache.Position);
    }

    [Fact]
    public void Hybrid_and_sliding_window_stream_like_the_full_forward()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Config(MixerKind.Attention, c => c with
        {
            LayerMixers = [MixerKind.GatedDeltaNet, MixerKind.Attention],
            Attention = new() { Window = 5 },
            Positions = PositionKind.Learned,
            MaxPositions = 64
        }));
        var x = Tokens(2, 19);
        var full = model.forward(x);
        using var cache = model.NewCache();
        var streamed = cat(Enumerable.Range(0, 19).Select(t => model.Step(x.narrow(1, t, 1), cache)).ToList(), 1);
        Assert.True(Equivalence.RelativeRms(streamed, full) <= 1e-10);
        // The window keeps the KV cache at window − 1 entries, whatever the context length.
        Assert.Equal(4, cache.Layers[1].Get("k")!.shape[2]);
    }

    [Theory]
    [InlineData(MixerKind.GatedDeltaNet)]
    [InlineData(MixerKind.Attention)]
    [InlineData(MixerKind.Mom)]
    public void Streaming_keeps_the_live_tensor_count_flat(MixerKind mixer) =>
        TinyModels.AssertStreamingKeepsLiveTensorsFlat(Build(Config(mixer), fp64: false), pieces: 12, promptEvery: 3, settledAfter: 3);

    [Fact]
    public void Fp32_streaming_matches_within_1e_5()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Config(MixerKind.GatedDeltaNet), fp64: false);
        var x = Tokens(2, 40);
        var full = model.forward(x);
        using var cache = model.NewCache();
        var streamed = cat(Enumerable.Range(0, 40).Select(t => model.Step(x.narrow(1, t, 1), cache)).ToList(), 1);
        Assert.True(Equivalence.RelativeRms(streamed, full) <= 1e-5);
    }

    [Theory]
    [MemberData(nameof(Mixers))]
    public void Outputs_do_not_depend_on_later_tokens(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        var model = Build(Config(mixer));
        var x = Tokens(2, 20);
        var y = x.clone();
        y[.., 11..] = (y[.., 11..] + 1) % 40;
        var a = model.forward(x);
        var b = model.forward(y);
        Assert.True(Equivalence.RelativeRms(a.narrow(1, 0, 11), b.narrow(1, 0, 11)) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(a.narrow(1, 11, 9), b.narrow(1, 11, 9)) > 1e-3);
    }

    [Theory]
    [MemberData(nameof(Mixers))]
    public void Every_parameter_receives_a_gradient(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        var model = Build(Config(mixer), fp64: false);
        var scored = arange(19).ge(5).unsqueeze(0).expand(2, -1);                  // as in training: a prompt, then scored positions
        var logits = model.ScoredLogits(Tokens(2, 19), scored);                  // (a prefix-reading mixer reads that prompt)
        nn.functional.cross_entropy(logits, TinyModels.Tokens(2, 19, seed: 4).index([TensorIndex.Tensor(scored)])).backward();
        TinyModels.AssertEveryParameterHasAGradient(model, mixer.ToString());
    }

    [Fact]
    public void Mamba3_mimo_streams_exactly_reads_no_later_token_and_trains_every_parameter()
    {
        // model.matrix.mimo_rank = 3: three keys, queries and values per token into one state, mixed back by mimo_o
        using var scope = NewDisposeScope();
        ModelConfig Mimo(ModelConfig c) => c with { Matrix = c.Matrix with { MimoRank = 3 } };
        using (no_grad())
        {
            var model = Build(Config(MixerKind.Mamba3, Mimo));
            var x = Tokens(2, 21);
            var full = model.forward(x);
            using var cache = model.NewCache();
            var streamed = TinyModels.Streamed(model, x, 6, cache);
            Assert.True(Equivalence.RelativeRms(streamed, full) <= 1e-10, $"{Equivalence.RelativeRms(streamed, full):E2}");
            var y = x.clone();
            y[.., 11..] = (y[.., 11..] + 1) % 40;
            Assert.True(Equivalence.RelativeRms(full.narrow(1, 0, 11), model.forward(y).narrow(1, 0, 11)) <= 1e-12);
        }
        var trained = Build(Config(MixerKind.Mamba3, Mimo), fp64: false);
        var logits = trained.forward(Tokens(2, 19));
        nn.functional.cross_entropy(logits.flatten(0, 1), TinyModels.Tokens(2, 19, seed: 4).flatten()).backward();
        TinyModels.AssertEveryParameterHasAGradient(trained, "mamba3 MIMO");
    }

    [Fact]
    public void Linear_attention_normaliser_and_feature_maps_stream_exactly()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var map in Enum.GetValues<FeatureMapKind>())
        {
            var model = Build(Config(MixerKind.LinearAttention, c => c with
            {
                Matrix = c.Matrix with { FeatureMap = map, Normalize = map != FeatureMapKind.Identity },
                ExpandK = 0.5
            }));
            var x = Tokens(1, 12);
            var full = model.forward(x);
            using var cache = model.NewCache();
            var streamed = cat(Enumerable.Range(0, 12).Select(t => model.Step(x.narrow(1, t, 1), cache)).ToList(), 1);
            Assert.True(Equivalence.RelativeRms(streamed, full) <= 1e-10, map.ToString());
        }
    }
}
