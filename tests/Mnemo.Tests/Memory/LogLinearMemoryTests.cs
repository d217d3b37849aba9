using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>Log-linear attention on Mamba-2's rule and on Gated DeltaNet's: naive ≡ step ≡ chunk (outputs, every level's
/// state, every gradient) from aligned and unaligned positions, carry-over, and its defining properties
/// (docs/mechanisms.md#log-linear-attention).</summary>
[Collection(TorchCollection.Name)]
public class LogLinearMemoryTests
{
    const int Levels = 8;                     // streams shorter than 2^7 = 128 tokens

    /// <summary>Seeded fp64 leaves: q, k, v, g ∈ −[lo, hi], λ = softplus(N(0, 1)) per level, with <paramref name="delta"/>
    /// β ∈ [0, 2] (negative eigenvalues included) and unit keys, and a carried state at <paramref name="position"/>
    /// (null: none), its levels zero where the position's bit is clear.</summary>
    static Equivalence.Leaves Inputs(long b, long t, long h, long dk, long dv, int seed, double lo, double hi, long? position,
        bool delta = false)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        x.Tensors["q"] = Leaf(randn([b, t, h, dk], float64, generator: gen));
        x.Tensors["k"] = Leaf(randn([b, t, h, dk], float64, generator: gen) * Math.Pow(dk, -0.5));
        x.Tensors["v"] = Leaf(randn([b, t, h, dv], float64, generator: gen));
        x.Tensors["g"] = Leaf(-(rand([b, t, h], float64, generator: gen) * (hi - lo) + lo));
        x.Tensors["lambda"] = Leaf(nn.functional.softplus(randn([b, t, h, Levels], float64, generator: gen)));
        if (delta)
        {
            x.Tensors["k"] = Leaf(nn.functional.normalize(randn([b, t, h, dk], float64, generator: gen), dim: -1));
            x.Tensors["beta"] = Leaf(rand([b, t, h], float64, generator: gen) * 2);
        }
        if (position is { } p)
        {
            var present = tensor(Enumerable.Range(0, Levels - 1).Select(j => (double)((p >> j) & 1)).ToArray(), float64);
            x.Tensors["s0"] = Leaf(randn([b, h, Levels - 1, dk, dv], float64, generator: gen) * present.view(1, 1, -1, 1, 1));
        }
        return x;
    }

    static LogLinearInputs Of(Equivalence.Leaves x, long? position) => new(x["q"]!, x["k"]!, x["v"]!, x["g"]!, x["lambda"]!,
        position is { } p ? new LogLinearState(x["s0"]!, p) : null, x["beta"]);

    /// <summary>A form, its final levels compared as one vector.</summary>
    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(KernelForm form, long? position, int chunk = 8) => x =>
    {
        var (y, s) = LogLinearMemory.Run(form, Of(x, position), chunk);
        return (y, s.S.flatten());
    };

    static (Tensor dO, Tensor dS) Cotangents(Equivalence.Leaves x, long? position, int seed)
    {
        var gen = new Generator((ulong)seed + 1000);
        var (o, state) = Form(KernelForm.Naive, position)(x);
        return (randn(o.shape, float64, generator: gen), randn(state.shape, float64, generator: gen));
    }

    /// <summary>The log-decay's range −[lo, hi], on Mamba-2's rule and on the delta rule.</summary>
    public static TheoryData<double, double, bool> Decays => new()
    {
        { 0.01, 0.5, false },      // moderate
        { 0, 0, false },           // no decay at all (linear attention with level weights)
        { 5, 20, false },          // strong decay
        { 0.01, 0.5, true },
        { 0, 0, true },            // DeltaNet's rule with level weights
        { 5, 20, true },
    };

    [Theory]
    [MemberData(nameof(Decays))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(double lo, double hi, bool delta)
    {
        // Chunks of 8 (levels 1–3 inside a chunk, 4–7 across chunks); starts aligned, unaligned and fresh; lengths that end
        // on and off a chunk boundary.
        foreach (long? position in new long?[] { null, 8, 13 })
            foreach (long t in new long[] { 1, 7, 8, 9, 21, 40 })
            {
                using var scope = NewDisposeScope();
                int seed = (int)t * 10 + (int)(position ?? 0);
                using var x = Inputs(b: 2, t: t, h: 2, dk: 4, dv: 3, seed, lo, hi, position, delta);
                var (dO, dS) = Cotangents(x, position, seed);
                string label = $"{(delta ? "delta" : "Mamba-2")} g∈−[{lo}, {hi}] from {position?.ToString() ?? "a fresh stream"} T={t}";
                Equivalence.AssertFormsAgree(x, form => Form(form, position), dO, dS, 1e-10, label);
            }
    }

    [Theory]
    [MemberData(nameof(Decays))]
    public void Fp32_chunk_and_step_forms_are_within_1e_5_of_the_fp64_reference(double lo, double hi, bool delta)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 120, h: 2, dk: 16, dv: 16, seed: 11, lo, hi, position: 5, delta);
        var (dO, dS) = Cotangents(x, 5, 11);
        var reference = Equivalence.Run(x, Form(KernelForm.Naive, 5), dO, dS);
        using var x32 = x.To(float32);
        foreach (var form in new[] { KernelForm.Chunk, KernelForm.Step })
            Equivalence.AssertClose(reference, Equivalence.Run(x32, Form(form, 5, chunk: 16), dO, dS), 1e-5,
                $"{(delta ? "delta" : "Mamba-2")} g∈−[{lo}, {hi}] fp32 {form}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Two_calls_carrying_the_state_equal_one_call(bool delta)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 61, h: 3, dk: 8, dv: 6, seed: 3, 0.01, 0.5, position: null, delta);
        LogLinearInputs Slice(long start, long length, LogLinearState? state)
        {
            Tensor? At(string name) => x[name]?.narrow(1, start, length);
            return new(At("q")!, At("k")!, At("v")!, At("g")!, At("lambda")!, state, At("beta"));
        }
        var whole = LogLinearMemory.Run(KernelForm.Chunk, Slice(0, 61, null), 16);
        var first = LogLinearMemory.Run(KernelForm.Chunk, Slice(0, 37, null), 16);
        var second = LogLinearMemory.Run(KernelForm.Chunk, Slice(37, 24, first.State), 16);
        Assert.Equal(61, second.State.Position);
        Assert.True(Equivalence.RelativeRms(cat([first.Y, second.Y], 1), whole.Y) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(second.State.S, whole.State.S) <= 1e-12);
    }

    [Fact]
    public void With_every_level_weighted_one_it_is_the_gated_linear_rule()
    {
        // λ ≡ 1: the Fenwick blocks sum back to the one memory of Mamba-2's rule.
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 45, h: 2, dk: 4, dv: 3, seed: 8, 0.01, 0.5, position: null);
        var ones = Of(x, null) with { Levels = ones_like(x["lambda"]!) };
        var (y, s) = LogLinearMemory.Run(KernelForm.Chunk, ones, 8);
        var (expected, state) = MatrixKernels.Run(MatrixKernelKind.GatedLinear, KernelForm.Naive,
            new KernelInputs(ones.Q, ones.K, ones.V, ones.G));
        Assert.True(Equivalence.RelativeRms(y, expected) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(s.S.sum([2]), state) <= 1e-12);
    }

    [Fact]
    public void With_every_level_weighted_one_on_the_delta_rule_it_is_gated_deltanet()
    {
        // Every level takes the same transitions e^g (I − β k kᵀ), so with λ ≡ 1 the levels sum to Gated DeltaNet's state.
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 45, h: 2, dk: 4, dv: 3, seed: 9, 0.01, 0.5, position: null, delta: true);
        var ones = Of(x, null) with { Levels = ones_like(x["lambda"]!) };
        var (y, s) = LogLinearMemory.Run(KernelForm.Chunk, ones, 8);
        var (expected, state) = MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Naive,
            new KernelInputs(ones.Q, ones.K, ones.V, ones.G, ones.Beta));
        Assert.True(Equivalence.RelativeRms(y, expected) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(s.S.sum([2]), state) <= 1e-12);
    }

    [Fact]
    public void A_position_keeps_one_memory_per_set_bit()
    {
        // After 45 = 101101₂ tokens the prefix is four blocks (32, 8, 4, 1 tokens): levels 1, 3, 4 and 6 hold memories.
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 1, t: 45, h: 1, dk: 4, dv: 3, seed: 2, 0.01, 0.1, position: null);
        var (_, s) = LogLinearMemory.Run(KernelForm.Chunk, Of(x, null), 8);
        var held = Enumerable.Range(1, Levels - 1).Where(j => s.S.select(2, j - 1).abs().sum().item<double>() > 0).ToArray();
        Assert.Equal([1, 3, 4, 6], held);
        Assert.Equal(6, LogLinearMemory.Level(45, 0));
        Assert.Equal(0, LogLinearMemory.Level(45, 45));
    }

    [Theory]
    [InlineData("levels", "levels must be [2, 10, 3, L] with L ≥ 2")]
    [InlineData("g", "g must be [2, 10, 3] (one log-decay per head)")]
    [InlineData("state", "the carried levels must be [2, 3, 7, 4, 5]")]
    [InlineData("long", "8 levels cover a stream of fewer than 128 tokens; this one would reach 130")]
    [InlineData("beta", "beta has shape [2, 10, 3, 4], expected [2, 10, 3]")]
    public void Bad_input_names_the_tensor(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 10, 3, 4);
        var x = new LogLinearInputs(q, q, randn(2, 10, 3, 5), zeros(2, 10, 3), ones(2, 10, 3, 8));
        x = wrong switch
        {
            "levels" => x with { Levels = ones(2, 10, 3, 1) },
            "g" => x with { G = zeros(2, 10, 3, 4) },
            "state" => x with { State = new LogLinearState(zeros([2, 3, 8, 4, 5]), 0) },
            "beta" => x with { Beta = zeros(2, 10, 3, 4) },
            _ => x with { State = new LogLinearState(zeros([2, 3, 7, 4, 5]), 120) },
        };
        var e = Assert.Throws<MnemoException>(() => LogLinearMemory.Run(KernelForm.Chunk, x, 4));
        Assert.Contains(expected, e.Message);
    }
}
