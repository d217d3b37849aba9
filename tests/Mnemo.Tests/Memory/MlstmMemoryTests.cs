using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>The mLSTM: naive ≡ step ≡ chunk (outputs, C, n and m, every gradient), carry-over, and the stabilised rule
/// against the paper's unstabilised one (docs/mechanisms.md#mlstm).</summary>
[Collection(TorchCollection.Name)]
public class MlstmMemoryTests
{
    /// <summary>Seeded fp64 leaves: q (scaled), k, v, gate pre-activations ĩ ~ N(iMean, iSpread²), f̃ ~ N(fMean, 2²), and
    /// optionally a carried state.</summary>
    static Equivalence.Leaves Inputs(long b, long t, long h, long dk, long dv, int seed, double iMean, double iSpread, double fMean,
        bool carried = true)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        x.Tensors["q"] = Leaf(randn([b, t, h, dk], float64, generator: gen) * Math.Pow(dk, -0.5));
        x.Tensors["k"] = Leaf(randn([b, t, h, dk], float64, generator: gen));
        x.Tensors["v"] = Leaf(randn([b, t, h, dv], float64, generator: gen));
        x.Tensors["i"] = Leaf(randn([b, t, h], float64, generator: gen) * iSpread + iMean);
        x.Tensors["f"] = Leaf(randn([b, t, h], float64, generator: gen) * 2 + fMean);
        if (carried)
        {
            x.Tensors["c0"] = Leaf(randn([b, h, dk, dv], float64, generator: gen) * 0.5);
            x.Tensors["n0"] = Leaf(randn([b, h, dk], float64, generator: gen) * 0.5);
            x.Tensors["m0"] = Leaf(randn([b, h], float64, generator: gen));
        }
        return x;
    }

    static MlstmInputs Of(Equivalence.Leaves x) => new(x["q"]!, x["k"]!, x["v"]!, x["i"]!, x["f"]!,
        x["c0"] is null ? null : new MlstmState(x["c0"]!, x["n0"]!, x["m0"]!));

    /// <summary>A form, its final C, n and m compared as one vector.</summary>
    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(KernelForm form, int chunk = 64) => x =>
    {
        var (h, s) = MlstmMemory.Run(form, Of(x), chunk);
        return (h, cat([s.C.flatten(), s.N.flatten(), s.M.flatten()]));
    };

    static (Tensor dO, Tensor dS) Cotangents(Equivalence.Leaves x, int seed)
    {
        var gen = new Generator((ulong)seed + 1000);
        var (o, state) = Form(KernelForm.Naive)(x);
        return (randn(o.shape, float64, generator: gen), randn(state.shape, float64, generator: gen));
    }

    /// <summary>(mean, spread) of ĩ and the mean of f̃.</summary>
    public static TheoryData<double, double, double> Settings => new()
    {
        { 0, 1, 3 },         // xLSTM's start: ĩ near 0, f̃ near its linspace(3, 6) bias
        { 5, 5, 3 },         // large input gates: m follows ĩ, e^{ĩ} would overflow unstabilised beyond ~88
        { 0, 1, 12 },        // f → 1: almost no decay
        { 0, 1, -12 },       // f → 0: strong decay, each token replaces the memory
        { -30, 1, 3 },       // ĩ → −∞: nothing written, the denominator's lower bound e^{−m} decides
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(double iMean, double iSpread, double fMean)
    {
        foreach (int chunk in new[] { 1, 16 })
            foreach (long t in new long[] { 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 5 }.Where(t => t >= 1).Distinct())
                foreach (bool carried in new[] { true, false })
                {
                    using var scope = NewDisposeScope();
                    int seed = chunk * 100 + (int)t + (carried ? 0 : 7);
                    using var x = Inputs(b: 2, t: t, h: 3, dk: 5, dv: 3, seed, iMean, iSpread, fMean, carried);
                    var (dO, dS) = Cotangents(x, seed);
                    string label = $"ĩ~N({iMean}, {iSpread}²) f̃ mean {fMean} C={chunk} T={t} carried={carried}";
                    Equivalence.AssertFormsAgree(x, form => Form(form, chunk), dO, dS, 1e-10, label);
                }
    }

    /// <summary>
    /// fp32 against fp64: within 1e-5, or within twice what the fp32 naive loop itself reaches where the rule is
    /// ill-conditioned in fp32 whatever the form. Measured (T = 150, relative RMS of the worst tensor): with large input
    /// gates (ĩ ~ N(5, 5²)) m reaches ~20, the denominator's floor e^{−m} ~ 1e-9 no longer guards q · n against
    /// cancellation, and the fp32 naive loop is off by 2.7e-3 (chunk 2.8e-3, step 2.7e-3); with f → 1 the normaliser sums
    /// every token and the naive loop is off by 1.3e-5 (chunk 7.5e-6, step 1.4e-5); elsewhere every form is within 7e-6.
    /// </summary>
    [Theory]
    [MemberData(nameof(Settings))]
    public void Fp32_chunk_and_step_forms_are_as_close_to_the_fp64_reference_as_the_fp32_naive_loop(double iMean, double iSpread,
        double fMean)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 150, h: 2, dk: 16, dv: 16, seed: 11, iMean, iSpread, fMean);
        var (dO, dS) = Cotangents(x, 11);
        var reference = Equivalence.Run(x, Form(KernelForm.Naive), dO, dS);
        using var x32 = x.To(float32);
        double tolerance = Equivalence.Fp32Tolerance(reference, Equivalence.Run(x32, Form(KernelForm.Naive), dO, dS),
            illConditioned: iMean > 0 || fMean > 10);
        foreach (var (form, chunk) in new[] { (KernelForm.Chunk, 64), (KernelForm.Step, 64) })
            Equivalence.AssertClose(reference, Equivalence.Run(x32, Form(form, chunk), dO, dS), tolerance,
                $"ĩ~N({iMean}, {iSpread}²) f̃ mean {fMean} fp32 {form} (tolerance {tolerance:E2})");
    }

    [Fact]
    public void Two_calls_carrying_the_state_equal_one_call()
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 61, h: 3, dk: 8, dv: 6, seed: 3, 2, 3, 2);
        MlstmInputs Slice(long start, long length, MlstmState? state) => new(x["q"]!.narrow(1, start, length),
            x["k"]!.narrow(1, start, length), x["v"]!.narrow(1, start, length), x["i"]!.narrow(1, start, length),
            x["f"]!.narrow(1, start, length), state);
        var whole = MlstmMemory.Run(KernelForm.Chunk, Slice(0, 61, Of(x).State), 16);
        var first = MlstmMemory.Run(KernelForm.Chunk, Slice(0, 40, Of(x).State), 16);
        var second = MlstmMemory.Run(KernelForm.Step, Slice(40, 21, first.State), 16);
        Assert.True(Equivalence.RelativeRms(cat([first.H, second.H], 1), whole.H) <= 1e-12);
        foreach (var (a, b) in new[] { (second.State.C, whole.State.C), (second.State.N, whole.State.N), (second.State.M, whole.State.M) })
            Assert.True(Equivalence.RelativeRms(a, b) <= 1e-12);
    }

    [Fact]
    public void The_stabilised_rule_is_the_unstabilised_one()
    {
        // The paper's rule without m: C_t = f_t C_{t−1} + e^{ĩ_t} k_tᵀ v_t, n_t likewise, h_t = q_t C_t / max(|q_t · n_t|, 1).
        // The stabilised form divides C and n by e^{m_t}, which cancels in h up to ε e^{m_t} in the denominator; with
        // m ≤ 3 here that is ≤ 2e-5 of a denominator ≥ 1.
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 40, h: 2, dk: 4, dv: 3, seed: 9, 0, 1, 2, carried: false);
        var (h, state) = MlstmMemory.Run(KernelForm.Chunk, Of(x), 16);
        Assert.True(state.M.max().item<double>() <= 3);
        var (q, k, v, i, f) = (x["q"]!.detach(), x["k"]!.detach(), x["v"]!.detach(), x["i"]!.detach(), x["f"]!.detach());
        var c = zeros(2, 2, 4, 3, float64);
        var n = zeros(2, 2, 4, float64);
        var outputs = new List<Tensor>();
        for (long t = 0; t < 40; t++)
        {
            var (forget, input) = (f.select(1, t).sigmoid(), i.select(1, t).exp());                 // [B, H]
            c = forget.view(2, 2, 1, 1) * c + input.view(2, 2, 1, 1) * k.select(1, t).unsqueeze(-1) * v.select(1, t).unsqueeze(-2);
            n = forget.unsqueeze(-1) * n + input.unsqueeze(-1) * k.select(1, t);
            var qt = q.select(1, t);
            var denominator = (qt * n).sum([-1], keepdim: true).abs().clamp_min(1);
            outputs.Add(qt.unsqueeze(-2).matmul(c).squeeze(-2) / denominator);
        }
        Assert.True(Equivalence.RelativeRms(h, stack(outputs, 1)) <= 2e-5);
    }

    [Fact]
    public void A_large_input_gate_neither_overflows_nor_loses_the_memory()
    {
        // ĩ = 200 once: e^{200} overflows fp32 unstabilised; stabilised, m jumps to 200 and every exponent stays ≤ 0.
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 1, t: 12, h: 1, dk: 4, dv: 3, seed: 4, 0, 1, 3, carried: false);
        var i = x["i"]!.detach().clone();
        i[0, 5, 0] = 200;
        var inputs = Of(x) with { InputGate = i };
        foreach (var form in new[] { KernelForm.Chunk, KernelForm.Step })
        {
            var (h, state) = MlstmMemory.Run(form, new MlstmInputs(inputs.Q.to(float32), inputs.K.to(float32), inputs.V.to(float32),
                i.to(float32), inputs.ForgetGate.to(float32)), 4);
            Assert.True(h.isfinite().all().item<bool>() && state.C.isfinite().all().item<bool>(), $"{form}: not finite");
            Assert.True(state.M.item<float>() > 190, $"{form}: m = {state.M.item<float>()}");
        }
    }

    [Theory]
    [InlineData("input_gate", "input_gate must be [2, 10, 3]")]
    [InlineData("forget_gate", "forget_gate must be [2, 10, 3]")]
    [InlineData("n", "the normaliser n must be [2, 3, 4]")]
    [InlineData("m", "the stabiliser m must be [2, 3]")]
    public void Wrong_shapes_name_the_tensor(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 10, 3, 4);
        var state = new MlstmState(zeros(2, 3, 4, 5), zeros(2, 3, 4), zeros(2, 3));
        var x = new MlstmInputs(q, q, randn(2, 10, 3, 5), zeros(2, 10, 3), zeros(2, 10, 3), state);
        x = wrong switch
        {
            "input_gate" => x with { InputGate = zeros(2, 10) },
            "forget_gate" => x with { ForgetGate = zeros(2, 10, 3, 1) },
            "n" => x with { State = state with { N = zeros(2, 3, 5) } },
            _ => x with { State = state with { M = zeros(2, 3, 1) } },
        };
        var e = Assert.Throws<MnemoException>(() => MlstmMemory.Run(KernelForm.Chunk, x, 4));
        Assert.Contains(expected, e.Message);
    }
}
