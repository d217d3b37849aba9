using Mnemo.Layers;
using Mnemo.Memory.Deep;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using Mnemo.Tests.Training;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// The deep-memory mixer inside the language model, over its options: streaming ≡ full forward (prompt pieces and
/// single tokens crossing memory-chunk boundaries), flat live-tensor count, config validation, and training.
/// </summary>
[Collection(TorchCollection.Name)]
public class DeepMemoryMixerTests
{
    /// <summary>Memory chunks of 5 tokens, so the test sequences cross several chunk boundaries.</summary>
    static ModelConfig Config(MixerKind mixer, Func<ModelConfig, ModelConfig>? edit = null) =>
        TinyModels.Config(mixer, c => (edit ?? (x => x))(c with { Deep = c.Deep with { ChunkSize = 5 } }));
    static LanguageModel Build(ModelConfig c, bool fp64 = true) => TinyModels.Build(c, fp64);
    static Tensor Tokens(long b, long t) => TinyModels.Tokens(b, t);

    public static TheoryData<string> Variants => new()
    {
        "titans", "titans-plain", "titans-pooled", "titans-depth1", "titans-silu-noresidual", "moneta", "yaad", "memora",
        "omeganet-window3", "atlas-taylor",
        "omeganet-polynomial", "yaad-window3", "titans-gradient-descent", "moneta-muon", "titans-plain-normalized",
        "moneta-l2-objective", "moneta-decay", "titans-huber-softmax",
    };

    static ModelConfig Variant(string name) => name switch
    {
        "titans" => Config(MixerKind.Titans),
        "titans-plain" => Config(MixerKind.Titans, c => c with { Deep = c.Deep with { ResidualNorm = false, GradClip = 0.05 } }),
        "titans-pooled" => Config(MixerKind.Titans, c => c with { Deep = c.Deep with { GatePooling = GatePooling.Chunk } }),
        "titans-depth1" => Config(MixerKind.Titans, c => c with { Deep = c.Deep with { Depth = 1, ResidualNorm = false } }),
        "titans-silu-noresidual" => Config(MixerKind.Titans,
            c => c with { Deep = c.Deep with { Depth = 3, Activation = MemoryActivation.Silu, ResidualNorm = false } }),
        "moneta" => Config(MixerKind.Moneta),
        "yaad" => Config(MixerKind.Yaad),
        "memora" => Config(MixerKind.Memora),
        "omeganet-window3" => Config(MixerKind.Omeganet, c => c with { Deep = c.Deep with { Window = 3 } }),
        "yaad-window3" => Config(MixerKind.Yaad, c => c with { Deep = c.Deep with { Window = 3 } }),
        "titans-gradient-descent" => Config(MixerKind.Titans,
            c => c with { Deep = c.Deep with { Learner = MemoryLearnerKind.GradientDescent } }),
        "moneta-muon" => Config(MixerKind.Moneta, c => c with { Deep = c.Deep with { Learner = MemoryLearnerKind.Muon } }),
        "titans-plain-normalized" => Config(MixerKind.Titans,
            c => c with { Deep = c.Deep with { ResidualNorm = false, NormalizedStep = true } }),
        "moneta-l2-objective" => Config(MixerKind.Moneta, c => c with { Deep = c.Deep with { Objective = MemoryObjectiveKind.L2 } }),
        "moneta-decay" => Config(MixerKind.Moneta, c => c with { Deep = c.Deep with { Retention = MemoryRetentionKind.Decay } }),
        "titans-huber-softmax" => Config(MixerKind.Titans, c => c with
        {
            Deep = c.Deep with { Objective = MemoryObjectiveKind.Huber, Retention = MemoryRetentionKind.Softmax }
        }),
        "atlas-taylor" => Config(MixerKind.Atlas,
            c => c with { Deep = c.Deep with { FeatureMap = MemoryFeatureMapKind.Taylor, ResidualNorm = false, Expansion = 1 } }),
        "omeganet-polynomial" => Config(MixerKind.Omeganet,
            c => c with { Deep = c.Deep with { FeatureMap = MemoryFeatureMapKind.Polynomial, ResidualNorm = false, Expansion = 1 } }),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Streaming_in_pieces_and_tokens_equals_the_full_forward(string variant)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(Variant(variant));
        var x = Tokens(2, 23);
        var full = model.forward(x);
        using var cache = model.NewCache();
        // A prompt that ends mid-chunk, single tokens across a chunk boundary, then a piece spanning two chunks.
        var pieces = new List<Tensor> { model.Step(x.narrow(1, 0, 7), cache) };
        for (long t = 7; t < 12; t++) pieces.Add(model.Step(x.narrow(1, t, 1), cache));
        pieces.Add(model.Step(x.narrow(1, 12, 11), cache));
        var streamed = cat(pieces, 1);
        double error = Equivalence.RelativeRms(streamed, full);
        Assert.True(error <= 1e-10, $"{variant}: {error:E2}");
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_parameter_receives_a_finite_gradient(string variant)
    {
        // An Omega window's empty slots (k = v = 0, δ = 0) once gave Yaad NaN gradients through the Huber branch.
        using var scope = NewDisposeScope();
        var model = Build(Variant(variant), fp64: false);
        var logits = model.forward(Tokens(2, 19));
        nn.functional.cross_entropy(logits.reshape(-1, 40), TinyModels.Tokens(2, 19, seed: 10).reshape(-1)).backward();
        TinyModels.AssertEveryParameterHasAGradient(model, variant);
    }

    [Theory]
    [InlineData(MixerKind.Titans)]
    [InlineData(MixerKind.Atlas)]
    public void Streaming_keeps_the_live_tensor_count_flat(MixerKind mixer) =>
        TinyModels.AssertStreamingKeepsLiveTensorsFlat(Build(Config(mixer), fp64: false), pieces: 14, promptEvery: 3, settledAfter: 4);

    [Fact]
    public void The_memory_has_learned_initial_weights_and_gates_named_after_their_role()
    {
        var names = Build(Config(MixerKind.Atlas, c => c with
        {
            Deep = c.Deep with { FeatureMap = MemoryFeatureMapKind.Taylor, ResidualNorm = false }
        }))
            .named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        const string layer = "model.layers.0.attn.";
        Assert.Equal(new long[] { 2, 1 + 8 + 64, 32 }, names[layer + "memory_init.0"]);        // φ width 1 + d + d², hidden 4·d
        Assert.Equal(new long[] { 2, 32, 8 }, names[layer + "memory_init.1"]);
        foreach (var p in new[] { "lr_proj.weight", "momentum_proj.weight", "forget_proj.weight", "window_proj.weight",
            "feature_coefficients", "o_proj.weight" })
            Assert.True(names.ContainsKey(layer + p), p);
        Assert.DoesNotContain(layer + "delta_proj.weight", names.Keys);
        Assert.DoesNotContain(layer + "g_proj.weight", names.Keys);                // no output gate by default
    }

    [Theory]
    [InlineData(-4.0)]
    [InlineData(-8.0)]
    public void The_forgetting_gate_starts_at_memory_forget_bias(double bias)
    {
        var c = Config(MixerKind.Titans, c => c with { Deep = c.Deep with { ForgetBias = bias } });
        var p = Build(c).named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var b = p["model.layers.0.attn.forget_proj.bias"];
        Assert.Equal(bias, b.min().ToDouble(), 12);
        Assert.Equal(bias, b.max().ToDouble(), 12);
    }

    [Fact]
    public void Memory_learner_replaces_the_rules_learner()
    {
        var gd = Config(MixerKind.Titans, c => c with { Deep = c.Deep with { Learner = MemoryLearnerKind.GradientDescent } });
        Assert.IsType<GradientDescent>(gd.Deep.Configure(DeepMemoryRule.Named["titans"]).Learner);
        Assert.IsType<MomentumDescent>(Config(MixerKind.Titans).Deep.Configure(DeepMemoryRule.Named["titans"]).Learner);
        var names = Build(gd).named_parameters().Select(p => p.name).ToList();
        Assert.DoesNotContain("model.layers.0.attn.momentum_proj.weight", names);
        // Without momentum the state is the weights and the chunk-start weights: 2 copies instead of 3.
        long withMomentum = DeepMemoryMixer.StateFloats(Config(MixerKind.Titans), DeepMemoryRule.Named["titans"]);
        Assert.Equal(withMomentum * 2 / 3, DeepMemoryMixer.StateFloats(gd, DeepMemoryRule.Named["titans"]));
    }

    [Fact]
    public void Memory_objective_and_retention_replace_one_axis_of_the_rule()
    {
        var moneta = DeepMemoryRule.Named["moneta"];
        var l2 = Config(MixerKind.Moneta, c => c with { Deep = c.Deep with { Objective = MemoryObjectiveKind.L2 } }).Deep.Configure(moneta);
        Assert.IsType<L2Objective>(l2.Objective);
        Assert.Equal(moneta.Retention, l2.Retention);
        Assert.Equal(moneta.Learner, l2.Learner);
        var decay = Config(MixerKind.Moneta, c => c with { Deep = c.Deep with { Retention = MemoryRetentionKind.Decay } })
            .Deep.Configure(moneta);
        Assert.Equal(moneta.Objective, decay.Objective);
        Assert.True(decay.Retention.IsIdentity);
        Assert.Equal(moneta, Config(MixerKind.Moneta).Deep.Configure(moneta) with
        {
            GradientClip = moneta.GradientClip,
            NormalizedStep = moneta.NormalizedStep,
        });
        // An objective that reads a threshold brings its projection with it.
        var huber = Config(MixerKind.Titans, c => c with { Deep = c.Deep with { Objective = MemoryObjectiveKind.Huber } });
        Assert.Contains("model.layers.0.attn.delta_proj.weight", Build(huber).named_parameters().Select(p => p.name));
    }

    [Fact]
    public void A_residual_memory_with_unequal_sizes_is_rejected_naming_the_field()
    {
        var config = Config(MixerKind.Titans, c => c with { ExpandV = 2, Deep = c.Deep with { ResidualNorm = true } });
        var errors = config.Validate().ToList();
        Assert.Contains(errors, e => e.Item1 == "deep.residual_norm");
    }

    [Theory]
    [InlineData(MixerKind.Titans)]
    [InlineData(MixerKind.Atlas)]
    public void A_model_with_a_deep_memory_trains(MixerKind mixer)
    {
        using var dir = new Tmp.Dir();
        var run = TrainerTests.Tiny(steps: 24);
        run = run with { Model = run.Model with { Mixer = mixer, Deep = run.Model.Deep with { ChunkSize = 8 } } };
        var losses = new TinyModels.Losses();
        new Trainer(run, dir.Path, losses).Run(resume: false);
        Assert.All(losses.Values, l => Assert.True(double.IsFinite(l)));
        Assert.True(losses.Values.TakeLast(3).Average() < losses.Values.Take(3).Average() - 0.1,
            $"loss did not decrease: {string.Join(", ", losses.Values.Select(l => l.ToString("F3")))}");
    }
}
