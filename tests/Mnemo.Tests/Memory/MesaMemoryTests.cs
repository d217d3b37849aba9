using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>MesaNet's memory: naive ≡ step ≡ chunk (outputs, H and G, every gradient), carry-over, and CG's answer
/// against the exact solve (docs/mechanisms.md#mesanet).</summary>
[Collection(TorchCollection.Name)]
public class MesaMemoryTests
{
    /// <summary>Seeded fp64 leaves: unit q and k (as the layer makes them), v, g ∈ −[lo, hi], β ∈ (0, 1), λ ∈ [0.25, 1.25],
    /// and optionally carried states (H symmetric positive semi-definite).</summary>
    static Equivalence.Leaves Inputs(long b, long t, long h, long dk, long dv, int seed, double lo, double hi, bool carried = true)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        x.Tensors["q"] = Leaf(nn.functional.normalize(randn([b, t, h, dk], float64, generator: gen), p: 2, dim: -1));
        x.Tensors["k"] = Leaf(nn.functional.normalize(randn([b, t, h, dk], float64, generator: gen), p: 2, dim: -1));
        x.Tensors["v"] = Leaf(randn([b, t, h, dv], float64, generator: gen));
        x.Tensors["g"] = Leaf(-(rand([b, t, h], float64, generator: gen) * (hi - lo) + lo));
        x.Tensors["beta"] = Leaf(rand([b, t, h], float64, generator: gen));
        x.Tensors["lambda"] = Leaf(rand([h, dk], float64, generator: gen) + 0.25);
        if (carried)
        {
            var a = randn([b, h, dk, dk], float64, generator: gen) * 0.5;
            x.Tensors["h0"] = Leaf(a.matmul(a.transpose(-1, -2)));
            x.Tensors["g0"] = Leaf(randn([b, h, dk, dv], float64, generator: gen) * 0.5);
        }
        return x;
    }

    static MesaInputs Of(Equivalence.Leaves x) => new(x["q"]!, x["k"]!, x["v"]!, x["g"]!, x["beta"]!, x["lambda"]!,
        x["h0"] is null ? null : new MesaState(x["h0"]!, x["g0"]!));

    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(KernelForm form, int steps, int chunk = 16) => x =>
    {
        var (o, s) = MesaMemory.Run(form, Of(x), steps, chunk);
        return (o, cat([s.H.flatten(), s.G.flatten()]));
    };

    static (Tensor dO, Tensor dS) Cotangents(Equivalence.Leaves x, int seed)
    {
        var gen = new Generator((ulong)seed + 1000);
        var (o, state) = Form(KernelForm.Naive, 1)(x);
        return (randn(o.shape, float64, generator: gen), randn(state.shape, float64, generator: gen));
    }

    /// <summary>The log-decay's range −[lo, hi] and the CG steps.</summary>
    public static TheoryData<double, double, int> Settings => new()
    {
        { 0.01, 0.5, 3 },
        { 0, 0, 10 },         // no decay: H grows with every token
        { 5, 20, 3 },         // strong decay: H is about the last token's β k kᵀ
        { 0.01, 0.5, 1 },     // one CG step: x = α q
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(double lo, double hi, int steps)
    {
        foreach (long t in new long[] { 1, 15, 16, 17, 37 })
            foreach (bool carried in new[] { true, false })
            {
                using var scope = NewDisposeScope();
                int seed = (int)t + (carried ? 0 : 7);
                using var x = Inputs(b: 2, t: t, h: 2, dk: 5, dv: 3, seed, lo, hi, carried);
                var (dO, dS) = Cotangents(x, seed);
                string label = $"g∈−[{lo}, {hi}] {steps} CG steps T={t} carried={carried}";
                Equivalence.AssertFormsAgree(x, form => Form(form, steps), dO, dS, 1e-10, label);
            }
    }

    /// <summary>
    /// fp32 against fp64: within 1e-5, or within twice what the fp32 naive loop itself reaches where CG amplifies rounding
    /// whatever the form. Measured (T = 100, Dk = 16, worst tensor): with no decay H sums every token (eigenvalues up to
    /// ~50 against λ ≥ 0.25) and after 10 CG steps in fp32 the naive loop is off by 5.6e-3, the chunk form 5.9e-3, the
    /// step form 5.6e-3; with decay every form is within 1.3e-6.
    /// </summary>
    [Theory]
    [MemberData(nameof(Settings))]
    public void Fp32_chunk_and_step_forms_are_as_close_to_the_fp64_reference_as_the_fp32_naive_loop(double lo, double hi, int steps)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 100, h: 2, dk: 16, dv: 16, seed: 11, lo, hi);
        var (dO, dS) = Cotangents(x, 11);
        var reference = Equivalence.Run(x, Form(KernelForm.Naive, steps), dO, dS);
        using var x32 = x.To(float32);
        double tolerance = Equivalence.Fp32Tolerance(reference, Equivalence.Run(x32, Form(KernelForm.Naive, steps), dO, dS),
            illConditioned: hi == 0);
        foreach (var form in new[] { KernelForm.Chunk, KernelForm.Step })
            Equivalence.AssertClose(reference, Equivalence.Run(x32, Form(form, steps, chunk: 32), dO, dS), tolerance,
                $"g∈−[{lo}, {hi}] {steps} CG steps fp32 {form} (tolerance {tolerance:E2})");
    }

    [Fact]
    public void Two_calls_carrying_the_state_equal_one_call()
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 41, h: 2, dk: 6, dv: 4, seed: 3, 0.01, 0.5);
        MesaInputs Slice(long start, long length, MesaState? state)
        {
            Tensor At(string name) => x[name]!.narrow(1, start, length);
            return new(At("q"), At("k"), At("v"), At("g"), At("beta"), x["lambda"]!, state);
        }
        var whole = MesaMemory.Run(KernelForm.Chunk, Slice(0, 41, Of(x).State), 10, 16);
        var first = MesaMemory.Run(KernelForm.Chunk, Slice(0, 23, Of(x).State), 10, 16);
        var second = MesaMemory.Run(KernelForm.Step, Slice(23, 18, first.State), 10, 16);
        Assert.True(Equivalence.RelativeRms(cat([first.O, second.O], 1), whole.O) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(second.State.H, whole.State.H) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(second.State.G, whole.State.G) <= 1e-12);
    }

    [Fact]
    public void Enough_cg_steps_give_the_exact_regression_answer()
    {
        // CG on a Dk × Dk system converges in Dk steps; 30 steps on Dk = 6 give (H_t + λ)⁻¹ q_t up to fla's 1e-5 guards in
        // both divisions, which stall it once the squared residual nears 1e-5 (measured: 5.0e-4 off the exact read).
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 1, t: 20, h: 2, dk: 6, dv: 3, seed: 5, 0.01, 0.5, carried: false);
        var (o, _) = MesaMemory.Run(KernelForm.Chunk, Of(x), 30, 8);
        var (h, g, q) = (zeros(1, 2, 6, 6, float64), zeros(1, 2, 6, 3, float64), x["q"]!.detach());
        var expected = new List<Tensor>();
        for (long t = 0; t < 20; t++)
        {
            var (k, decay, beta) = (x["k"]!.detach().select(1, t), x["g"]!.detach().select(1, t).exp().view(1, 2, 1, 1),
                x["beta"]!.detach().select(1, t).view(1, 2, 1, 1));
            h = decay * h + beta * k.unsqueeze(-1) * k.unsqueeze(-2);
            g = decay * g + beta * k.unsqueeze(-1) * x["v"]!.detach().select(1, t).unsqueeze(-2);
            var solution = linalg.solve(h + diag_embed(x["lambda"]!.detach()), q.select(1, t).unsqueeze(-1)).squeeze(-1);
            expected.Add(solution.unsqueeze(-2).matmul(g).squeeze(-2));
        }
        Assert.True(Equivalence.RelativeRms(o, stack(expected, 1)) <= 1e-3, $"{Equivalence.RelativeRms(o, stack(expected, 1)):E2}");
    }

    [Theory]
    [InlineData("beta", "beta must be [2, 10, 3]")]
    [InlineData("lambda", "lambda must be [3, 4]")]
    [InlineData("h", "the carried H must be [2, 3, 4, 4]")]
    [InlineData("steps", "the number of CG steps must be at least 1")]
    public void Bad_input_names_the_tensor(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 10, 3, 4);
        var x = new MesaInputs(q, q, randn(2, 10, 3, 5), zeros(2, 10, 3), zeros(2, 10, 3), ones(3, 4));
        x = wrong switch
        {
            "beta" => x with { Beta = zeros(2, 10) },
            "lambda" => x with { Lambda = ones(4) },
            "h" => x with { State = new MesaState(zeros(2, 3, 4, 5), zeros(2, 3, 4, 5)) },
            _ => x,
        };
        var e = Assert.Throws<MnemoException>(() => MesaMemory.Run(KernelForm.Chunk, x, wrong == "steps" ? 0 : 3, 4));
        Assert.Contains(expected, e.Message);
    }
}
