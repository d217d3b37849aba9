using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Memory.Matrix;
using Mnemo.Memory.Mixture;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Models;
using Mnemo.Tests.Training;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>Mixture of memories: naive ≡ step ≡ chunk, untouched memories, padding, carried state, fp32; the mixer
/// (fla names, streaming, the balance loss) and training a model with it.</summary>
[Collection(TorchCollection.Name)]
public class MixtureTests
{
    public enum Gate { None, Scalar, Channel }

    /// <summary>One case: rule, gate, memories, top-k, shared memory.</summary>
    public sealed record Case(MatrixKernelKind Kind, Gate Gate, int Memories, int TopK, bool Shared)
    {
        public override string ToString() => $"{Kind} g={Gate} M={Memories} k={TopK} shared={Shared}";
    }

    public static TheoryData<Case> Cases => new()
    {
        new Case(MatrixKernelKind.Delta, Gate.Scalar, 4, 2, true),     // Gated DeltaNet, the reference setting
        new Case(MatrixKernelKind.Delta, Gate.None, 3, 1, false),      // DeltaNet, top-1
        new Case(MatrixKernelKind.Delta, Gate.Scalar, 3, 3, true),     // top-k = M: every memory sees every token
        new Case(MatrixKernelKind.GatedLinear, Gate.Scalar, 4, 2, false),
        new Case(MatrixKernelKind.GatedLinear, Gate.Channel, 2, 1, true),
        new Case(MatrixKernelKind.GatedLinear, Gate.None, 3, 3, false),
    };

    /// <summary>Seeded fp64 leaves and routing. <paramref name="routeAmong"/> limits routing to the first memories.</summary>
    static (Equivalence.Leaves Leaves, Tensor Indices) Inputs(Case c, long b, long t, int seed, long h = 2, long dk = 5, long dv = 7,
        int? routeAmong = null)
    {
        var gen = new Generator((ulong)seed);
        long m = c.Memories;
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        Tensor Key(long[] shape)
        {
            var k = randn(shape, float64, generator: gen);
            return c.Kind == MatrixKernelKind.Delta ? nn.functional.normalize(k, p: 2, dim: -1) : k * 0.5;
        }
        Tensor LogGate(long[] shape) => rand(shape, float64, generator: gen) * 0.99 - 1;   // [−1, −0.01]
        x.Tensors["q"] = Leaf(randn([b, t, h, dk], float64, generator: gen));
        x.Tensors["k"] = Leaf(Key([b, t, m, h, dk]));
        x.Tensors["v"] = Leaf(randn([b, t, m, h, dv], float64, generator: gen));
        if (c.Gate == Gate.Scalar) x.Tensors["g"] = Leaf(LogGate([b, t, m, h]));
        if (c.Gate == Gate.Channel) x.Tensors["g"] = Leaf(LogGate([b, t, m, h, dk]));
        if (c.Kind == MatrixKernelKind.Delta) x.Tensors["beta"] = Leaf(rand([b, t, m, h], float64, generator: gen) * 0.9 + 0.05);
        x.Tensors["weights"] = Leaf(rand([b, t, c.TopK], float64, generator: gen) + 0.1);
        x.Tensors["h0"] = Leaf(randn([b, m, h, dk, dv], float64, generator: gen) * 0.5);
        if (c.Shared)
        {
            x.Tensors["shared_k"] = Leaf(Key([b, t, h, dk]));
            x.Tensors["shared_v"] = Leaf(randn([b, t, h, dv], float64, generator: gen));
            if (c.Gate == Gate.Scalar) x.Tensors["shared_g"] = Leaf(LogGate([b, t, h]));
            if (c.Gate == Gate.Channel) x.Tensors["shared_g"] = Leaf(LogGate([b, t, h, dk]));
            if (c.Kind == MatrixKernelKind.Delta) x.Tensors["shared_beta"] = Leaf(rand([b, t, h], float64, generator: gen) * 0.9 + 0.05);
            x.Tensors["shared_h0"] = Leaf(randn([b, h, dk, dv], float64, generator: gen) * 0.5);
        }
        // k distinct memories per token: the first k of a random permutation of the allowed ones.
        var indices = rand([b, t, routeAmong ?? m], generator: gen).argsort(-1).narrow(-1, 0, c.TopK);
        return (x, indices);
    }

    static MixtureInputs Mixture(Equivalence.Leaves x, Tensor indices, long start = 0, long? length = null, bool initial = true)
    {
        long len = length ?? x["q"]!.shape[1] - start;
        Tensor? Slice(string name) => x[name]?.narrow(1, start, len);
        var shared = x["shared_k"] is null ? null
            : new KernelInputs(Slice("q")!, Slice("shared_k")!, Slice("shared_v")!, Slice("shared_g"), Slice("shared_beta"),
                initial ? x["shared_h0"] : null);
        return new MixtureInputs(Slice("q")!, Slice("k")!, Slice("v")!, Slice("g"), Slice("beta"), indices.narrow(1, start, len),
            Slice("weights")!, initial ? x["h0"] : null, shared);
    }

    /// <summary>State compared by the harness: every memory's state, then the shared memory's.</summary>
    static Tensor AllStates(MixtureResult r) => r.SharedState is null ? r.States : cat([r.States, r.SharedState.unsqueeze(1)], 1);

    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(Case c, Tensor indices, KernelForm form, int chunk = 64) => x =>
    {
        var r = MixtureOfMemories.Run(c.Kind, form, Mixture(x, indices), chunk);
        return (r.O, AllStates(r));
    };

    static (Tensor dO, Tensor dS) Cotangents(Case c, Equivalence.Leaves x, int seed)
    {
        var gen = new Generator((ulong)seed + 1000);
        var q = x["q"]!;
        var h0 = x["h0"]!;
        long states = c.Memories + (c.Shared ? 1 : 0);
        return (randn([q.shape[0], q.shape[1], q.shape[2], x["v"]!.shape[4]], float64, generator: gen),
                randn([h0.shape[0], states, h0.shape[2], h0.shape[3], h0.shape[4]], float64, generator: gen));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(Case c)
    {
        foreach (long t in new long[] { 1, 7, 20, 37 })
        {
            using var scope = NewDisposeScope();
            int seed = 100 + (int)t;
            var (x, indices) = Inputs(c, b: 2, t: t, seed);
            using var leaves = x;
            var (dO, dS) = Cotangents(c, x, seed);
            var naive = Equivalence.Run(x, Form(c, indices, KernelForm.Naive), dO, dS);
            Equivalence.AssertClose(naive, Equivalence.Run(x, Form(c, indices, KernelForm.Step), dO, dS), 1e-10, $"{c} T={t} step");
            foreach (int chunk in new[] { 1, 3, 16 })
                Equivalence.AssertClose(naive, Equivalence.Run(x, Form(c, indices, KernelForm.Chunk, chunk), dO, dS), 1e-10,
                    $"{c} T={t} chunk C={chunk}");
        }
    }

    [Theory]
    [InlineData(MatrixKernelKind.Delta)]
    [InlineData(MatrixKernelKind.GatedLinear)]
    public void A_memory_that_receives_no_tokens_keeps_its_state_exactly(MatrixKernelKind kind)
    {
        using var scope = NewDisposeScope();
        var c = new Case(kind, Gate.Scalar, 4, 2, true);
        var (x, indices) = Inputs(c, b: 2, t: 23, seed: 3, routeAmong: 3);  // memory 3 gets nothing
        using var leaves = x;
        // Row 1 also never uses memory 2: route it among {0, 1} only.
        indices[1] = rand([23, 2]).argsort(-1);
        foreach (var (form, chunk) in new[] { (KernelForm.Chunk, 16), (KernelForm.Chunk, 3), (KernelForm.Step, 64),
            (KernelForm.Naive, 64) })
        {
            var r = MixtureOfMemories.Run(kind, form, Mixture(x, indices), chunk);
            var h0 = x["h0"]!.detach();
            Assert.True(Same(r.States.select(1, 3), h0.select(1, 3)), $"{form} C={chunk}: memory 3 changed");
            Assert.True(Same(r.States[1, 2], h0[1, 2]), $"{form} C={chunk}: row 1's memory 2 changed");
            Assert.False(Same(r.States[0, 2], h0[0, 2]), $"{form}: row 0's memory 2 should have been written");
        }
    }

    static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

    [Theory]
    [InlineData(MatrixKernelKind.Delta)]
    [InlineData(MatrixKernelKind.GatedLinear)]
    public void Zero_padding_leaves_outputs_and_state_unchanged(MatrixKernelKind kind)
    {
        // What the chunk form relies on: tokens with k = v = 0, g = 0 (and β = 0) are exact no-ops for the state.
        using var scope = NewDisposeScope();
        var gen = new Generator(17);
        var q = randn([2, 11, 2, 4], float64, generator: gen);
        var k = nn.functional.normalize(randn([2, 11, 2, 4], float64, generator: gen), p: 2, dim: -1);
        var v = randn([2, 11, 2, 3], float64, generator: gen);
        var g = -rand([2, 11, 2], float64, generator: gen);
        var beta = rand([2, 11, 2], float64, generator: gen);
        var h0 = randn([2, 2, 4, 3], float64, generator: gen);
        Tensor Pad(Tensor a, Tensor? fill = null) => cat([a, fill ?? zeros([a.shape[0], 6, .. a.shape[2..]], float64)], 1);
        bool delta = kind == MatrixKernelKind.Delta;
        var plain = MatrixKernels.Run(kind, KernelForm.Chunk, new KernelInputs(q, k, v, g, delta ? beta : null, h0), 4);
        var padded = MatrixKernels.Run(kind, KernelForm.Chunk,
            new KernelInputs(Pad(q, randn([2, 6, 2, 4], float64, generator: gen)), Pad(k), Pad(v), Pad(g), delta ? Pad(beta) : null, h0),
            4);
        Assert.True(Same(padded.State, plain.State), "the padded run changed the state");
        Assert.True(Equivalence.RelativeRms(padded.O.narrow(1, 0, 11), plain.O) <= 1e-15);
    }

    [Fact]
    public void Fp32_forms_are_within_1e_5_of_the_fp64_reference()
    {
        using var scope = NewDisposeScope();
        foreach (var c in new[] { new Case(MatrixKernelKind.Delta, Gate.Scalar, 4, 2, true),
            new Case(MatrixKernelKind.GatedLinear, Gate.Channel, 3, 2, true) })
        {
            var (x, indices) = Inputs(c, b: 2, t: 60, seed: 7, dk: 16, dv: 16);
            using var leaves = x;
            var (dO, dS) = Cotangents(c, x, 7);
            var reference = Equivalence.Run(x, Form(c, indices, KernelForm.Step), dO, dS);
            using var x32 = x.To(float32);
            foreach (var (form, chunk) in new[] { (KernelForm.Chunk, 16), (KernelForm.Step, 64) })
            {
                var r = Equivalence.Run(x32, Form(c, indices, form, chunk), dO, dS);
                Assert.Equal(ScalarType.Float32, r.O.dtype);
                Equivalence.AssertClose(reference, r, 1e-5, $"{c} fp32 {form} C={chunk}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Two_calls_carrying_the_states_equal_one_call(Case c)
    {
        using var scope = NewDisposeScope();
        var (x, indices) = Inputs(c, b: 2, t: 41, seed: 9);
        using var leaves = x;
        var whole = MixtureOfMemories.Run(c.Kind, KernelForm.Chunk, Mixture(x, indices), 8);
        var first = MixtureOfMemories.Run(c.Kind, KernelForm.Chunk, Mixture(x, indices, 0, 25), 8);
        var rest = Mixture(x, indices, 25) with { H0 = first.States };
        if (rest.Shared is not null) rest = rest with { Shared = rest.Shared with { H0 = first.SharedState } };
        // The second piece streams token by token through Continue (the step form), as decoding does.
        var o = new List<Tensor> { first.O };
        var (states, shared) = (first.States, first.SharedState);
        for (long t = 0; t < 16; t++)
        {
            var one = Mixture(x, indices, 25 + t, 1) with { H0 = states };
            if (one.Shared is not null) one = one with { Shared = one.Shared with { H0 = shared } };
            var r = MixtureOfMemories.Continue(c.Kind, one, 8);
            (states, shared) = (r.States, r.SharedState);
            o.Add(r.O);
        }
        var chunked = MixtureOfMemories.Run(c.Kind, KernelForm.Chunk, rest, 8);
        Assert.True(Equivalence.RelativeRms(cat([first.O, chunked.O], 1), whole.O) <= 1e-12, $"{c}: chunked pieces");
        Assert.True(Equivalence.RelativeRms(AllStates(chunked), AllStates(whole)) <= 1e-12, $"{c}: chunked states");
        Assert.True(Equivalence.RelativeRms(cat(o, 1), whole.O) <= 1e-12, $"{c}: streamed");
        Assert.True(Equivalence.RelativeRms(states, whole.States) <= 1e-12, $"{c}: streamed states");
    }

    [Theory]
    [InlineData("duplicate", "same memory twice")]
    [InlineData("range", "indices must lie in [0, 3)")]
    [InlineData("top", "route each token to 4 memories")]
    [InlineData("weights", "weights has shape")]
    [InlineData("k", "k has shape")]
    public void Bad_routing_and_shapes_are_named(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 5, 2, 4);
        var k = wrong == "k" ? randn(2, 5, 2, 4) : randn([2, 5, 3, 2, 4]);
        var v = randn([2, 5, 3, 2, 6]);
        var beta = rand(2, 5, 3, 2);
        var indices = wrong switch
        {
            "duplicate" => zeros([2, 5, 2], int64),
            "range" => full([2, 5, 2], 3L, int64),
            "top" => rand([2, 5, 4]).argsort(-1),
            _ => rand([2, 5, 3]).argsort(-1).narrow(-1, 0, 2),
        };
        var weights = wrong == "weights" ? rand(2, 5, 3) : rand(indices.shape);
        var e = Assert.Throws<MnemoException>(() => MixtureOfMemories.Run(MatrixKernelKind.Delta, KernelForm.Chunk,
            new MixtureInputs(q, k, v, null, beta, indices, weights)));
        Assert.Contains(expected, e.Message);
    }

    // ---- The mixer and the model ------------------------------------------------------------------------------

    static ModelConfig MomConfig(Func<ModelConfig, ModelConfig>? edit = null) => TinyModels.Config(MixerKind.Mom, edit);
    static LanguageModel Build(ModelConfig c, bool fp64 = true) => TinyModels.Build(c, fp64);
    static Tensor Tokens(long b, long t, int seed = 9) => TinyModels.Tokens(b, t, seed);

    [Fact]
    public void Mixer_parameters_have_fla_names_and_shapes()
    {
        var p = Build(MomConfig()).named_parameters().ToDictionary(x => x.name, x => x.parameter.shape);
        string at = "model.layers.0.attn.";
        Assert.Equal(new long[] { 4, 16 }, p[at + "gate.weight"]);
        Assert.Equal(new long[] { 16, 16 }, p[at + "q_proj.weight"]);
        foreach (int m in new[] { 0, 3 })
        {
            Assert.Equal(new long[] { 16, 16 }, p[at + $"k_proj.{m}.weight"]);
            Assert.Equal(new long[] { 16, 16 }, p[at + $"v_proj.{m}.weight"]);
            Assert.Equal(new long[] { 2, 16 }, p[at + $"b_proj.{m}.weight"]);
            Assert.Equal(new long[] { 2, 16 }, p[at + $"a_proj.{m}.weight"]);
        }
        Assert.False(p.ContainsKey(at + "k_proj.4.weight"));
        foreach (var (name, rows) in new[] { ("shared_k", 16L), ("shared_v", 16L), ("shared_b", 2L), ("shared_a", 2L) })
            Assert.Equal(new long[] { rows, 16 }, p[at + name + ".weight"]);
        Assert.Equal(new long[] { 2 }, p[at + "A_log"]);
        Assert.Equal(new long[] { 2 }, p[at + "dt_bias"]);
        Assert.Equal(new long[] { 16, 1, 4 }, p[at + "k_conv1d.weight"]);
        Assert.Equal(new long[] { 16, 16 }, p[at + "g_proj.weight"]);
        Assert.Equal(new long[] { 8 }, p[at + "o_norm.weight"]);
        Assert.Equal(new long[] { 16, 16 }, p[at + "o_proj.weight"]);

        // DeltaNet memories have no decay; gated linear ones no β; without a shared memory no shared_*.
        var delta = Build(MomConfig(c => c with { Mom = c.Mom with { Rule = MomRule.DeltaNet, SharedMemory = false } })).named_parameters()
            .Select(x => x.name).ToHashSet();
        Assert.DoesNotContain(at + "A_log", delta);
        Assert.DoesNotContain(at + "a_proj.0.weight", delta);
        Assert.DoesNotContain(at + "shared_k.weight", delta);
        var linear = Build(MomConfig(c => c with { Mom = c.Mom with { Rule = MomRule.GatedLinear } })).named_parameters()
            .Select(x => x.name).ToHashSet();
        Assert.DoesNotContain(at + "b_proj.0.weight", linear);
        Assert.DoesNotContain(at + "shared_b.weight", linear);
        Assert.Contains(at + "shared_a.weight", linear);
    }

    public static TheoryData<MomRule, int, int, bool> Mixers => new()
    {
        { MomRule.GatedDeltaNet, 4, 1, true },
        { MomRule.GatedDeltaNet, 3, 3, false },
        { MomRule.DeltaNet, 4, 2, true },
        { MomRule.GatedLinear, 2, 1, false },
    };

    [Theory]
    [MemberData(nameof(Mixers))]
    public void Mixer_streamed_token_by_token_equals_its_full_forward(MomRule rule, int memories, int topK, bool shared)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = Build(MomConfig(c =>
            c with { Mom = new() { Rule = rule, NumMemories = memories, TopK = topK, SharedMemory = shared } }));
        model.eval();
        var x = Tokens(2, 19);
        var full = model.forward(x);
        using var cache = model.NewCache();
        double e = Equivalence.RelativeRms(TinyModels.Streamed(model, x, 5, cache), full);
        Assert.True(e <= 1e-10, $"{rule} M={memories} k={topK} shared={shared}: {e:E2}");
        Assert.Equal(new long[] { 2, memories, 2, 8, 8 }, cache.Layers[0].Get("states")!.shape);
        Assert.Equal(shared, cache.Layers[0].Get("shared_state") is not null);
    }

    [Fact]
    public void Balance_loss_is_one_for_uniform_routing_larger_when_collapsed_and_differentiable()
    {
        using var scope = NewDisposeScope();
        double Loss(Tensor logits, int k) => Router.BalanceLoss(Router.Select(logits, k)).item<double>();
        var uniform = zeros([2, 10, 4], float64);
        Assert.Equal(1.0, Loss(uniform, 2), 12);
        Assert.Equal(1.0, Loss(uniform, 1), 12);
        // Every token strongly prefers memory 0: f_0 = 1 (k = 1) and P_0 ≈ 1, so the loss approaches M = 4.
        var collapsed = zeros([2, 10, 4], float64);
        collapsed[.., .., 0] = 10;
        Assert.True(Loss(collapsed, 1) > 3.9);
        // Routing that follows the probabilities (each token sure of its own memory, memories used equally) is balanced.
        var spread = (arange(20, int64) % 4).reshape(2, 10);
        Assert.Equal(1.0, Loss(nn.functional.one_hot(spread, 4).to(float64) * 30, 1), 6);

        var logits = randn([2, 10, 4], float64, generator: new Generator(1)).requires_grad_(true);
        var loss = Router.BalanceLoss(Router.Select(logits, 2));
        Assert.True(loss.item<double>() > 0);
        loss.backward();
        Assert.True(logits.grad!.abs().sum().item<double>() > 0);
        // A gradient step on the loss alone moves the router towards balance.
        var skewed = (randn([2, 10, 4], float64, generator: new Generator(2)) + tensor(new[] { 2.0, 0, 0, 0 })).requires_grad_(true);
        double before = Loss(skewed.detach(), 1);
        Router.BalanceLoss(Router.Select(skewed, 1)).backward();
        double after = Loss(skewed.detach() - 5 * skewed.grad!, 1);
        Assert.True(after < before, $"{after} ≥ {before}");
    }

    [Fact]
    public void Model_takes_the_weighted_balance_loss_once_and_only_in_training()
    {
        using var scope = NewDisposeScope();
        var model = Build(MomConfig(), fp64: false);
        model.train();
        var logits = model.forward(Tokens(2, 12));
        var aux = model.TakeAuxLoss();
        Assert.NotNull(aux);
        Assert.Null(model.TakeAuxLoss());
        // Two layers, each's term ≥ 0, weighted by router_aux_loss_coef = 0.01; each term is about 1 at initialisation.
        double value = aux!.item<float>();
        Assert.InRange(value, 0.01, 0.1);
        (logits.square().mean() + aux).backward();
        var router = model.named_parameters().First(p => p.name == "model.layers.0.attn.gate.weight").parameter;
        Assert.True(router.grad!.abs().sum().item<float>() > 0);
        model.eval();
        using (no_grad()) model.forward(Tokens(2, 12));
        Assert.Null(model.TakeAuxLoss());
        Assert.Null(Build(new ModelConfig { Mixer = MixerKind.GatedDeltaNet, VocabSize = 40, DModel = 16, NumHeads = 2 }, fp64: false)
            .TakeAuxLoss());
    }

    [Fact]
    public void Config_binds_mom_fields_and_rejects_top_k_above_the_memories()
    {
        static ModelConfig Bind(string json) => ConfigBinder.Bind<ModelConfig>(ConfigBinder.ParseText(json, "test"), "test");
        var c = Bind("""{"mixer": "mom", "mom": {"num_memories": 3, "top_k": 3, "shared_memory": false, "rule": "delta_net"}}""");
        Assert.Equal((MixerKind.Mom, 3, 3, false, MomRule.DeltaNet),
            (c.Mixer, c.Mom.NumMemories, c.Mom.TopK, c.Mom.SharedMemory, c.Mom.Rule));
        var e = Assert.ThrowsAny<MnemoException>(() => Bind("""{"mixer": "mom", "mom": {"num_memories": 2, "top_k": 3}}"""));
        Assert.Contains("top_k", e.Message);
    }

    [Fact]
    public void A_model_with_mom_layers_trains()
    {
        using var dir = new Tmp.Dir();
        var run = TrainerTests.Tiny(steps: 12);
        run = run with { Model = run.Model with { Mixer = MixerKind.Mom } };
        var losses = new TinyModels.Losses();
        new Trainer(run, dir.Path, losses).Run(resume: false);
        Assert.All(losses.Values, l => Assert.True(double.IsFinite(l)));
        Assert.True(losses.Values.TakeLast(3).Average() < losses.Values.Take(3).Average() - 0.1,
            $"loss did not decrease: {string.Join(", ", losses.Values.Select(l => l.ToString("F3")))}");
    }
}
