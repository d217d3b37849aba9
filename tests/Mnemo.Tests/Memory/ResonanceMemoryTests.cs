using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>Synaptic resonance: naive ≡ step ≡ chunk (outputs, both final states, every gradient), carry-over, and its
/// defining properties (docs/mechanisms.md#synaptic-resonance).</summary>
[Collection(TorchCollection.Name)]
public class ResonanceMemoryTests
{
    /// <summary>Seeded fp64 leaves: unit keys (as the layer makes them), relevance logits, α, log λ and both carried states.</summary>
    static Equivalence.Leaves Inputs(long b, long t, long h, long dk, long dv, int seed, double decayLo, double decayHi,
        bool resonance = true, bool carried = true, double relevanceScale = 2)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        x.Tensors["q"] = Leaf(randn([b, t, h, dk], float64, generator: gen));
        x.Tensors["k"] = Leaf(nn.functional.normalize(randn([b, t, h, dk], float64, generator: gen), p: 2, dim: -1));
        x.Tensors["v"] = Leaf(randn([b, t, h, dv], float64, generator: gen));
        x.Tensors["z"] = Leaf(randn([b, t, h], float64, generator: gen) * relevanceScale);
        x.Tensors["log_decay"] = Leaf((rand([h], float64, generator: gen) * (decayHi - decayLo) + decayLo).log());
        if (resonance) x.Tensors["alpha"] = Leaf(randn([h], float64, generator: gen) * 2);
        if (carried)
        {
            x.Tensors["s0"] = Leaf(randn([b, h, dk, dv], float64, generator: gen) * 0.5);
            if (resonance)
            {
                var a = randn([b, h, dk, dk], float64, generator: gen) * 0.5;
                x.Tensors["c0"] = Leaf(a.matmul(a.transpose(-1, -2)));                  // a trace is positive semi-definite
            }
        }
        return x;
    }

    static ResonanceInputs Of(Equivalence.Leaves x) =>
        new(x["q"]!, x["k"]!, x["v"]!, x["z"]!, x["alpha"], x["log_decay"]!, x["c0"], x["s0"]);

    /// <summary>A form, its two final states compared as one vector.</summary>
    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(KernelForm form, int chunk = 64) => x =>
    {
        var (o, c, s) = ResonanceMemory.Run(form, Of(x), chunk);
        return (o, c is null ? s.flatten() : cat([c.flatten(), s.flatten()]));
    };

    static (Tensor dO, Tensor dS) Cotangents(Equivalence.Leaves x, int seed)
    {
        var gen = new Generator((ulong)seed + 1000);
        var (o, state) = Form(KernelForm.Naive)(x);
        return (randn(o.shape, float64, generator: gen), randn(state.shape, float64, generator: gen));
    }

    public static TheoryData<double, double, bool> Settings => new()
    {
        { 0.9, 0.99, true },            // moderate λ
        { 1 - 1e-6, 1 - 1e-7, true },   // λ → 1: almost no decay
        { 1e-3, 1e-2, true },           // λ → 0: a written token replaces the memory
        { 0.5, 0.95, false },           // the ablation: no resonance term, no key trace
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(double decayLo, double decayHi, bool resonance)
    {
        foreach (int chunk in new[] { 1, 16 })
            foreach (long t in new long[] { 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 5 }.Where(t => t >= 1).Distinct())
                foreach (bool carried in new[] { true, false })
                {
                    using var scope = NewDisposeScope();
                    int seed = chunk * 100 + (int)t + (carried ? 0 : 7);
                    using var x = Inputs(b: 2, t: t, h: 3, dk: 5, dv: 3, seed, decayLo, decayHi, resonance, carried);
                    var (dO, dS) = Cotangents(x, seed);
                    string label = $"λ∈[{decayLo}, {decayHi}] resonance={resonance} C={chunk} T={t} carried={carried}";
                    Equivalence.AssertFormsAgree(x, form => Form(form, chunk), dO, dS, 1e-10, label);
                }
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public void Fp32_chunk_and_step_forms_are_within_1e_5_of_the_fp64_reference(double decayLo, double decayHi, bool resonance)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 150, h: 2, dk: 16, dv: 16, seed: 11, decayLo, decayHi, resonance);
        var (dO, dS) = Cotangents(x, 11);
        var reference = Equivalence.Run(x, Form(KernelForm.Naive), dO, dS);
        using var x32 = x.To(float32);
        foreach (var (form, chunk) in new[] { (KernelForm.Chunk, 64), (KernelForm.Step, 64) })
            Equivalence.AssertClose(reference, Equivalence.Run(x32, Form(form, chunk), dO, dS), 1e-5,
                $"λ∈[{decayLo}, {decayHi}] resonance={resonance} fp32 {form}");
    }

    [Fact]
    public void Two_calls_carrying_both_states_equal_one_call()
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 61, h: 3, dk: 8, dv: 6, seed: 3, 0.8, 0.99);
        ResonanceInputs Slice(long start, long length, Tensor? c0, Tensor? s0) => Of(x) with
        {
            Q = x["q"]!.narrow(1, start, length),
            K = x["k"]!.narrow(1, start, length),
            V = x["v"]!.narrow(1, start, length),
            Relevance = x["z"]!.narrow(1, start, length),
            C0 = c0,
            S0 = s0,
        };
        var whole = ResonanceMemory.Run(KernelForm.Chunk, Slice(0, 61, x["c0"], x["s0"]), 16);
        var first = ResonanceMemory.Run(KernelForm.Chunk, Slice(0, 40, x["c0"], x["s0"]), 16);
        var second = ResonanceMemory.Run(KernelForm.Step, Slice(40, 21, first.C, first.S), 16);
        Assert.True(Equivalence.RelativeRms(cat([first.O, second.O], 1), whole.O) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(second.C!, whole.C!) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(second.S, whole.S) <= 1e-12);
    }

    [Fact]
    public void An_irrelevant_token_neither_writes_nor_forgets()
    {
        // z → −∞ makes r = 0 whatever the resonance: S passes through unchanged, while the key trace still counts the key.
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 1, t: 5, h: 2, dk: 4, dv: 3, seed: 5, 0.5, 0.6);
        var ignored = Of(x) with { Relevance = full([1, 5, 2], -1e4, float64) };
        var (_, c, s) = ResonanceMemory.Run(KernelForm.Chunk, ignored, 4);
        Assert.True(Equivalence.RelativeRms(s, x["s0"]!) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(c!, x["c0"]!) > 1e-3);
    }

    [Fact]
    public void Resonance_is_one_for_a_key_repeated_forever_and_one_minus_lambda_for_a_first_key()
    {
        // ρ_t = (1 − λ) k C_t kᵀ: a key never seen before (C_{t−1} = 0) gives 1 − λ; the same key repeated forever gives
        // (1 − λ) Σ λ^j = 1. Read through the write strength: with z = 0 and α = 1, r = σ(ρ).
        using var scope = NewDisposeScope();
        const double lambda = 0.9;
        long t = 400;
        var k = nn.functional.normalize(ones([1, t, 1, 4], float64), p: 2, dim: -1);
        var v = ones([1, t, 1, 1], float64);
        var x = new ResonanceInputs(k, k, v, zeros([1, t, 1], float64), ones([1], float64), full([1], Math.Log(lambda), float64));
        // With q = k and unit v the read of S is the memory along k; recover r_t from the change of S.
        var (_, _, s1) = ResonanceMemory.Run(KernelForm.Naive, x with
        {
            Q = k.narrow(1, 0, 1),
            K = k.narrow(1, 0, 1),
            V = v.narrow(1, 0, 1),
            Relevance = zeros([1, 1, 1], float64)
        });
        double r1 = k.select(1, 0).matmul(s1.squeeze(0)).sum().item<double>();            // k S_1 = r_1 (unit key)
        Assert.Equal(1 / (1 + Math.Exp(-(1 - lambda))), r1, 12);
        var (_, c, _) = ResonanceMemory.Run(KernelForm.Chunk, x, 64);
        var kLast = k.select(1, t - 1).squeeze(0);                                          // [1, 4]
        double rho = (1 - lambda) * kLast.matmul(c!.squeeze(0).squeeze(0)).matmul(kLast.t()).item<double>();
        Assert.Equal(1.0, rho, 9);
    }

    [Theory]
    [InlineData("relevance", "relevance must be [2, 10, 3]")]
    [InlineData("log_decay", "log_decay must be [3]")]
    [InlineData("alpha", "alpha must be [3]")]
    [InlineData("c0", "c0 must be [2, 3, 4, 4]")]
    public void Wrong_shapes_name_the_tensor(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 10, 3, 4);
        var x = new ResonanceInputs(q, q, randn(2, 10, 3, 5), zeros(2, 10, 3), ones(3), full([3], -0.1), zeros(2, 3, 4, 4));
        x = wrong switch
        {
            "relevance" => x with { Relevance = zeros(2, 10) },
            "log_decay" => x with { LogDecay = zeros(2) },
            "alpha" => x with { Alpha = ones(3, 1) },
            _ => x with { C0 = zeros(2, 3, 4, 5) },
        };
        var e = Assert.Throws<MnemoException>(() => ResonanceMemory.Run(KernelForm.Chunk, x, 4));
        Assert.Contains(expected, e.Message);
    }
}
