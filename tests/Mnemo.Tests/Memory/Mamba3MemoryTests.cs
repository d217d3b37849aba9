using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>Mamba-3's state update, SISO and MIMO: naive ≡ step ≡ chunk (outputs, S, the carried keys, values and angle,
/// every gradient), carry-over, and the rule's defining properties (docs/mechanisms.md#mamba-3).</summary>
[Collection(TorchCollection.Name)]
public class Mamba3MemoryTests
{
    /// <summary>Seeded fp64 leaves: q, k, v, A·Δ ∈ −[lo, hi], Δ ∈ [0.1, 1.1], λ (random, or fixed at <paramref name="lambda"/>),
    /// rotation rates θ ∈ π·(−1, 1), <paramref name="rank"/> rows of q, k, v per token, and optionally a carried state.</summary>
    static Equivalence.Leaves Inputs(long b, long t, long h, long n, long p, long r, int seed, double lo, double hi, double? lambda,
        bool carried = true, long rank = 1)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        x.Tensors["q"] = Leaf(randn([b, t * rank, h, n], float64, generator: gen));
        x.Tensors["k"] = Leaf(randn([b, t * rank, h, n], float64, generator: gen));
        x.Tensors["v"] = Leaf(randn([b, t * rank, h, p], float64, generator: gen));
        x.Tensors["adt"] = Leaf(-(rand([b, t, h], float64, generator: gen) * (hi - lo) + lo));
        x.Tensors["dt"] = Leaf(rand([b, t, h], float64, generator: gen) + 0.1);
        x.Tensors["lambda"] = Leaf(lambda is { } l ? full([b, t, h], l, float64) : rand([b, t, h], float64, generator: gen));
        x.Tensors["theta"] = Leaf((rand([b, t, h, r], float64, generator: gen) * 2 - 1) * Math.PI);
        if (carried)
        {
            x.Tensors["s0"] = Leaf(randn([b, h, n, p], float64, generator: gen) * 0.5);
            x.Tensors["k0"] = Leaf(randn([b, rank, h, n], float64, generator: gen));
            x.Tensors["v0"] = Leaf(randn([b, rank, h, p], float64, generator: gen));
            x.Tensors["phi0"] = Leaf(rand([b, h, r], float64, generator: gen) * 2 * Math.PI);
        }
        return x;
    }

    static Mamba3Inputs Of(Equivalence.Leaves x) => new(x["q"]!, x["k"]!, x["v"]!, x["adt"]!, x["dt"]!, x["lambda"]!, x["theta"]!,
        x["s0"] is null ? null : new Mamba3State(x["s0"]!, x["k0"]!, x["v0"]!, x["phi0"]!));

    /// <summary>A form, its final S, key, value and angle compared as one vector.</summary>
    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(KernelForm form, int chunk = 64) => x =>
    {
        var (y, s) = Mamba3Memory.Run(form, Of(x), chunk);
        return (y, cat([s.S.flatten(), s.Key.flatten(), s.Value.flatten(), s.Angle.to(y.dtype).flatten()]));
    };

    static (Tensor dO, Tensor dS) Cotangents(Equivalence.Leaves x, int seed)
    {
        var gen = new Generator((ulong)seed + 1000);
        var (o, state) = Form(KernelForm.Naive)(x);
        return (randn(o.shape, float64, generator: gen), randn(state.shape, float64, generator: gen));
    }

    /// <summary>−A·Δ range, λ (null: random per token) and the rank (1: SISO, 3: MIMO).</summary>
    public static TheoryData<double, double, double?, int> Settings => new()
    {
        { 0.01, 1, null, 1 },      // the trapezoid with moderate decay
        { 1e-6, 1e-5, null, 1 },   // almost no decay
        { 5, 20, null, 1 },        // strong decay
        { 0.01, 1, 1.0, 1 },       // λ = 1: Euler (one write per token, Mamba-2's rule on rotated keys)
        { 0.01, 1, 0.0, 1 },       // λ = 0: every token written only at the next step
        { 0.01, 1, null, 3 },      // MIMO
        { 5, 20, null, 3 },
        { 0.01, 1, 0.0, 3 },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(double lo, double hi, double? lambda, int rank)
    {
        foreach (int chunk in new[] { 1, 16 })
            foreach (long t in new long[] { 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 5 }.Where(t => t >= 1).Distinct())
                foreach (bool carried in new[] { true, false })
                {
                    using var scope = NewDisposeScope();
                    int seed = chunk * 100 + (int)t + (carried ? 0 : 7);
                    // N = 6 with R = 2: two rotated pairs and two channels that pass unrotated
                    using var x = Inputs(b: 2, t: t, h: 3, n: 6, p: 3, r: 2, seed, lo, hi, lambda, carried, rank);
                    var (dO, dS) = Cotangents(x, seed);
                    string label = $"−AΔ∈[{lo}, {hi}] λ={lambda?.ToString() ?? "random"} R={rank} C={chunk} T={t} carried={carried}";
                    Equivalence.AssertFormsAgree(x, form => Form(form, chunk), dO, dS, 1e-10, label);
                }
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public void Fp32_chunk_and_step_forms_are_within_1e_5_of_the_fp64_reference(double lo, double hi, double? lambda, int rank)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 150, h: 2, n: 16, p: 16, r: 8, seed: 11, lo, hi, lambda, rank: rank);
        var (dO, dS) = Cotangents(x, 11);
        var reference = Equivalence.Run(x, Form(KernelForm.Naive), dO, dS);
        using var x32 = x.To(float32);
        foreach (var (form, chunk) in new[] { (KernelForm.Chunk, 64), (KernelForm.Step, 64) })
            Equivalence.AssertClose(reference, Equivalence.Run(x32, Form(form, chunk), dO, dS), 1e-5,
                $"−AΔ∈[{lo}, {hi}] λ={lambda?.ToString() ?? "random"} R={rank} fp32 {form}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Two_calls_carrying_the_state_equal_one_call(int rank)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 61, h: 3, n: 8, p: 6, r: 4, seed: 3, 0.01, 1, null, rank: rank);
        Mamba3Inputs Slice(long start, long length, Mamba3State? state)
        {
            Tensor At(string name) => x[name]!.narrow(1, start, length);
            Tensor Rows(string name) => x[name]!.narrow(1, start * rank, length * rank);
            return new(Rows("q"), Rows("k"), Rows("v"), At("adt"), At("dt"), At("lambda"), At("theta"), state);
        }
        var whole = Mamba3Memory.Run(KernelForm.Chunk, Slice(0, 61, Of(x).State), 16);
        var first = Mamba3Memory.Run(KernelForm.Chunk, Slice(0, 40, Of(x).State), 16);
        var second = Mamba3Memory.Run(KernelForm.Step, Slice(40, 21, first.State), 16);
        Assert.True(Equivalence.RelativeRms(cat([first.Y, second.Y], 1), whole.Y) <= 1e-12);
        foreach (var (a, b) in new[] { (second.State.S, whole.State.S), (second.State.Key, whole.State.Key),
                     (second.State.Value, whole.State.Value), (second.State.Angle, whole.State.Angle) })
            Assert.True(Equivalence.RelativeRms(a, b) <= 1e-12);
    }

    [Fact]
    public void Without_rotation_and_with_lambda_one_it_is_mamba2s_rule()
    {
        // θ = 0, λ = 1: S_t = e^{AΔ} S_{t−1} + Δ_t k_tᵀ v_t, the gated linear kernel with v ← Δ v (Mamba-2).
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 37, h: 2, n: 4, p: 3, r: 2, seed: 8, 0.01, 1, 1.0, carried: false);
        var plain = Of(x) with { Angles = zeros_like(x["theta"]!) };
        var (y, _) = Mamba3Memory.Run(KernelForm.Chunk, plain, 16);
        var (expected, _) = MatrixKernels.Run(MatrixKernelKind.GatedLinear, KernelForm.Naive,
            new KernelInputs(plain.Q, plain.K, plain.V * plain.Dt.unsqueeze(-1), plain.LogDecay));
        Assert.True(Equivalence.RelativeRms(y, expected) <= 1e-12);
    }

    [Fact]
    public void Mimo_with_every_rank_alike_splitting_the_value_is_siso()
    {
        // k_tr = k_t, q_tr = q_t and v_tr = v_t / R: Σ_r k̃ᵀ v_r = k̃ᵀ v, and every rank reads q̃ S, the SISO output.
        using var scope = NewDisposeScope();
        using var x = Inputs(b: 2, t: 29, h: 2, n: 6, p: 3, r: 2, seed: 4, 0.01, 1, null);
        const int rank = 3;
        Tensor Spread(Tensor v, double scale) => v.repeat_interleave(rank, 1) * scale;            // [B, T·R, H, ·]
        var siso = Of(x);
        var state = siso.State!;
        var mimo = siso with
        {
            Q = Spread(siso.Q, 1),
            K = Spread(siso.K, 1),
            V = Spread(siso.V, 1.0 / rank),
            State = state with { Key = state.Key.expand(-1, rank, -1, -1), Value = state.Value.expand(-1, rank, -1, -1) / rank },
        };
        var (y, s) = Mamba3Memory.Run(KernelForm.Chunk, siso, 8);
        var (ym, sm) = Mamba3Memory.Run(KernelForm.Chunk, mimo, 8);
        Assert.True(Equivalence.RelativeRms(ym.view(2, 29, rank, 2, 3), y.unsqueeze(2).expand(-1, -1, rank, -1, -1)) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(sm.S, s.S) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(sm.Key, s.Key.expand(-1, rank, -1, -1)) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(sm.Value * rank, s.Value.expand(-1, rank, -1, -1)) <= 1e-12);
    }

    [Fact]
    public void A_rotation_by_pi_flips_the_sign_of_what_was_written_before()
    {
        // The complex state tracks parity: one token with θΔ = π between a write and a read negates that write's
        // contribution to the read (both of its rotated pairs turn by π relative to the query); no decay, λ = 1.
        using var scope = NewDisposeScope();
        var q = ones(1, 3, 1, 2, float64);
        var k = ones(1, 3, 1, 2, float64);
        var v = tensor(new double[] { 1, 0, 0 }, float64).view(1, 3, 1, 1);
        var zero = zeros(1, 3, 1, float64);
        var dt = ones(1, 3, 1, float64);
        var theta = tensor(new double[] { 0, Math.PI, 0 }, float64).view(1, 3, 1, 1);
        var (y, _) = Mamba3Memory.Run(KernelForm.Chunk, new Mamba3Inputs(q, k, v, zero, dt, ones(1, 3, 1, float64), theta), 4);
        // y_t = q̃_t · k̃_0 v_0 = ‖q‖‖k‖ cos(Φ_t − Φ_0) = 2, −2, −2
        Assert.True(Equivalence.RelativeRms(y.flatten(), tensor(new double[] { 2, -2, -2 }, float64)) <= 1e-12);
    }

    [Theory]
    [InlineData("dt", "dt must be [2, 10, 3]")]
    [InlineData("angles", "angles must be [2, 10, 3, A] with 1 ≤ A ≤ 2")]
    [InlineData("key", "the carried keys must be [2, 1, 3, 4]")]
    [InlineData("rows", "q, k and v must have R rows per token (T·R, T = 10 from dt), got 25 rows")]
    [InlineData("angle", "the carried angle must be [2, 3, 2]")]
    public void Wrong_shapes_name_the_tensor(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 10, 3, 4);
        var g = zeros(2, 10, 3);
        var state = new Mamba3State(zeros(2, 3, 4, 5), zeros(2, 1, 3, 4), zeros(2, 1, 3, 5), zeros(2, 3, 2, ScalarType.Float64));
        var x = new Mamba3Inputs(q, q, randn(2, 10, 3, 5), g, g, g, zeros(2, 10, 3, 2), state);
        x = wrong switch
        {
            "dt" => x with { Dt = zeros(2, 10) },
            "angles" => x with { Angles = zeros(2, 10, 3, 3) },
            "key" => x with { State = state with { Key = zeros(2, 3, 5) } },
            "rows" => x with { Q = randn(2, 25, 3, 4), K = randn(2, 25, 3, 4), V = randn(2, 25, 3, 5) },
            _ => x with { State = state with { Angle = zeros(2, 3, 1) } },
        };
        var e = Assert.Throws<MnemoException>(() => Mamba3Memory.Run(KernelForm.Chunk, x, 4));
        Assert.Contains(expected, e.Message);
    }
}
