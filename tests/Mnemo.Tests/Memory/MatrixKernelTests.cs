using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>naive ≡ step ≡ chunk for both matrix kernels: outputs, final state and every gradient.</summary>
[Collection(TorchCollection.Name)]
public class MatrixKernelTests
{
    public enum Gate { None, Scalar, Channel }

    /// <summary>How strong the decay is: log-gates drawn from [lo, hi].</summary>
    public enum Decay { Zero, Tiny, Moderate, Strong }

    internal static (double Lo, double Hi) Range(Decay d) => d switch
    {
        Decay.Zero => (0, 0),
        Decay.Tiny => (-1e-4, 0),
        Decay.Moderate => (-1, -0.01),
        _ => (-12, -3),
    };

    /// <summary>Seeded fp64 leaves: keys L2-normalised for the delta rule (as its layers do), β ∈ (0, 1).</summary>
    internal static Equivalence.Leaves Inputs(MatrixKernelKind kind, Gate gate, Decay decay, long b, long t, long h, long dk, long dv,
        int seed, double betaLo = 0.05, double betaHi = 0.95, bool h0 = true)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        x.Tensors["q"] = Leaf(randn([b, t, h, dk], float64, generator: gen));
        var k = randn([b, t, h, dk], float64, generator: gen);
        x.Tensors["k"] = Leaf(kind == MatrixKernelKind.Delta ? nn.functional.normalize(k, p: 2, dim: -1) : k * 0.5);
        x.Tensors["v"] = Leaf(randn([b, t, h, dv], float64, generator: gen));
        var (lo, hi) = Range(decay);
        if (gate == Gate.Scalar) x.Tensors["g"] = Leaf(rand([b, t, h], float64, generator: gen) * (hi - lo) + lo);
        if (gate == Gate.Channel) x.Tensors["g"] = Leaf(rand([b, t, h, dk], float64, generator: gen) * (hi - lo) + lo);
        if (kind == MatrixKernelKind.Delta) x.Tensors["beta"] = Leaf(rand([b, t, h], float64, generator: gen) * (betaHi - betaLo) + betaLo);
        if (h0) x.Tensors["h0"] = Leaf(randn([b, h, dk, dv], float64, generator: gen) * 0.5);
        return x;
    }

    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(MatrixKernelKind kind, KernelForm form, int chunk = 64) =>
        x => MatrixKernels.Run(kind, form, new KernelInputs(x["q"]!, x["k"]!, x["v"]!, x["g"], x["beta"], x["h0"]), chunk);

    internal static (Tensor dO, Tensor dS) Cotangents(Equivalence.Leaves x, int seed)
    {
        var gen = new Generator((ulong)seed + 1000);
        var q = x["q"]!;
        var v = x["v"]!;
        return (randn([q.shape[0], q.shape[1], q.shape[2], v.shape[3]], float64, generator: gen),
                randn([q.shape[0], q.shape[2], q.shape[3], v.shape[3]], float64, generator: gen));
    }

    public static TheoryData<MatrixKernelKind, Gate, Decay> Rules => new()
    {
        { MatrixKernelKind.GatedLinear, Gate.None, Decay.Zero },
        { MatrixKernelKind.GatedLinear, Gate.Scalar, Decay.Moderate },
        { MatrixKernelKind.GatedLinear, Gate.Scalar, Decay.Strong },
        { MatrixKernelKind.GatedLinear, Gate.Scalar, Decay.Zero },
        { MatrixKernelKind.GatedLinear, Gate.Channel, Decay.Moderate },
        { MatrixKernelKind.GatedLinear, Gate.Channel, Decay.Strong },
        { MatrixKernelKind.GatedLinear, Gate.Channel, Decay.Tiny },
        { MatrixKernelKind.Delta, Gate.None, Decay.Zero },
        { MatrixKernelKind.Delta, Gate.Scalar, Decay.Moderate },
        { MatrixKernelKind.Delta, Gate.Scalar, Decay.Strong },
        { MatrixKernelKind.Delta, Gate.Scalar, Decay.Tiny },
        { MatrixKernelKind.Delta, Gate.Channel, Decay.Moderate },          // Kimi Delta Attention: a decay per key channel
        { MatrixKernelKind.Delta, Gate.Channel, Decay.Strong },
        { MatrixKernelKind.Delta, Gate.Channel, Decay.Tiny },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(MatrixKernelKind kind, Gate gate, Decay decay)
    {
        // Lengths around each chunk size: 1, C−1, C, C+1 and several chunks plus a remainder.
        foreach (int chunk in new[] { 1, 3, 16, 64 })
            foreach (long t in new long[] { 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 5 }.Where(t => t >= 1).Distinct())
            {
                using var scope = NewDisposeScope();
                int seed = chunk * 1000 + (int)t;
                using var x = Inputs(kind, gate, decay, b: 2, t: t, h: 2, dk: 5, dv: 7, seed);
                var (dO, dS) = Cotangents(x, seed);
                var naive = Equivalence.Run(x, Form(kind, KernelForm.Naive), dO, dS);
                string label = $"{kind} g={gate} decay={decay} C={chunk} T={t}";
                Equivalence.AssertClose(naive, Equivalence.Run(x, Form(kind, KernelForm.Chunk, chunk), dO, dS), 1e-10, label + " chunk");
                if (chunk == 64)
                    Equivalence.AssertClose(naive, Equivalence.Run(x, Form(kind, KernelForm.Step), dO, dS), 1e-10, label + " step");
            }
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Chunk_form_from_the_zero_state_equals_the_naive_reference(MatrixKernelKind kind, Gate gate, Decay decay)
    {
        // No h0: one chunk skips every read of the (zero) incoming state, several chunks skip the first one's.
        foreach (long t in new long[] { 1, 15, 16, 17, 37 })
        {
            using var scope = NewDisposeScope();
            using var x = Inputs(kind, gate, decay, b: 2, t: t, h: 2, dk: 5, dv: 7, seed: 500 + (int)t, h0: false);
            var (dO, dS) = Cotangents(x, 500 + (int)t);
            var naive = Equivalence.Run(x, Form(kind, KernelForm.Naive), dO, dS);
            Equivalence.AssertClose(naive, Equivalence.Run(x, Form(kind, KernelForm.Chunk, 16), dO, dS), 1e-10,
                $"{kind} g={gate} decay={decay} T={t} from zero");
        }
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Fp32_forms_are_within_1e_5_of_the_fp64_reference(MatrixKernelKind kind, Gate gate, Decay decay)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(kind, gate, decay, b: 2, t: 150, h: 2, dk: 16, dv: 16, seed: 7);
        var (dO, dS) = Cotangents(x, 7);
        var reference = Equivalence.Run(x, Form(kind, KernelForm.Naive), dO, dS);
        using var x32 = x.To(float32);
        foreach (var (form, chunk) in new[] { (KernelForm.Chunk, 64), (KernelForm.Chunk, 16), (KernelForm.Step, 64) })
        {
            var r = Equivalence.Run(x32, Form(kind, form, chunk), dO, dS);
            Assert.Equal(ScalarType.Float32, r.O.dtype);
            Equivalence.AssertClose(reference, r, 1e-5, $"{kind} g={gate} decay={decay} fp32 {form} C={chunk}");
        }
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Two_calls_carrying_the_state_equal_one_call(MatrixKernelKind kind, Gate gate, Decay decay)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(kind, gate, decay, b: 2, t: 77, h: 3, dk: 8, dv: 6, seed: 3);
        var whole = MatrixKernels.Run(kind, KernelForm.Chunk, Slice(x, 0, 77), 16);
        var first = MatrixKernels.Run(kind, KernelForm.Chunk, Slice(x, 0, 40), 16);
        var second = MatrixKernels.Run(kind, KernelForm.Chunk, Slice(x, 40, 37) with { H0 = first.State }, 16);
        Assert.True(Equivalence.RelativeRms(cat([first.O, second.O], 1), whole.O) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(second.State, whole.State) <= 1e-12);
    }

    static KernelInputs Slice(Equivalence.Leaves x, long start, long length) => new(
        x["q"]!.narrow(1, start, length), x["k"]!.narrow(1, start, length), x["v"]!.narrow(1, start, length),
        x["g"]?.narrow(1, start, length), x["beta"]?.narrow(1, start, length), x["h0"]);

    [Theory]
    [InlineData(0.0, 0.0)]   // β = 0: nothing is written; the state only decays
    [InlineData(1.0, 1.0)]   // β = 1: the value bound to k is replaced outright
    [InlineData(1.0, 2.0)]   // β ∈ [1, 2] (model.matrix.negative_eigenvalues): I − β kᵀk has the eigenvalue 1 − β ≤ 0
    [InlineData(2.0, 2.0)]   // β = 2: I − 2kᵀk is the reflection through the plane orthogonal to k
    public void Delta_rule_at_the_extremes_of_beta(double lo, double hi)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(MatrixKernelKind.Delta, Gate.Scalar, Decay.Moderate, 2, 45, 2, 6, 5, seed: 11, betaLo: lo, betaHi: hi);
        var (dO, dS) = Cotangents(x, 11);
        var naive = Equivalence.Run(x, Form(MatrixKernelKind.Delta, KernelForm.Naive), dO, dS);
        Equivalence.AssertClose(naive, Equivalence.Run(x, Form(MatrixKernelKind.Delta, KernelForm.Chunk, 16), dO, dS), 1e-10, $"β={lo}");
        if (lo == 0)
        {
            // With β = 0 the final state is h0 decayed by exp(Σ g).
            var expected = x["h0"]!.detach() * x["g"]!.detach().sum(1).exp().unsqueeze(-1).unsqueeze(-1);
            Assert.True(Equivalence.RelativeRms(naive.State, expected) <= 1e-12);
        }
        else if (hi == 1)
        {
            // With β = 1 and ‖k‖ = 1, reading k right after writing (k, v) returns v exactly.
            var k = x["k"]!.detach().select(1, 44);
            var recalled = k.unsqueeze(-2).matmul(naive.State).squeeze(-2);
            Assert.True(Equivalence.RelativeRms(recalled, x["v"]!.detach().select(1, 44)) <= 1e-12);
        }
        else if (lo == 2)
        {
            // With β = 2 and ‖k‖ = 1 the write reflects what the decayed state held for k: k S_t = 2v − k S'_{t−1}.
            using var noGrad = no_grad();
            var (_, before) = MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Naive, new KernelInputs(x["q"]!.narrow(1, 0, 44),
                x["k"]!.narrow(1, 0, 44), x["v"]!.narrow(1, 0, 44), x["g"]!.narrow(1, 0, 44), x["beta"]!.narrow(1, 0, 44), x["h0"]));
            var k = x["k"]!.select(1, 44).unsqueeze(-2);                                     // [B, H, 1, Dk]
            var decayed = before * x["g"]!.select(1, 44).exp().unsqueeze(-1).unsqueeze(-1);
            var expected = 2 * x["v"]!.select(1, 44) - k.matmul(decayed).squeeze(-2);
            Assert.True(Equivalence.RelativeRms(k.matmul(naive.State).squeeze(-2), expected) <= 1e-12);
        }
    }

    [Fact]
    public void Linear_attention_equals_causal_unnormalised_attention()
    {
        // Independent closed form: o_t = Σ_{j≤t} (q_t·k_j) v_j when there is no gate and no initial state.
        using var scope = NewDisposeScope();
        using var x = Inputs(MatrixKernelKind.GatedLinear, Gate.None, Decay.Zero, 2, 30, 2, 4, 3, seed: 5, h0: false);
        var q = x["q"]!.detach().transpose(1, 2);
        var k = x["k"]!.detach().transpose(1, 2);
        var v = x["v"]!.detach().transpose(1, 2);
        var expected = q.matmul(k.transpose(-1, -2)).tril().matmul(v).transpose(1, 2);
        var (o, _) = MatrixKernels.Run(MatrixKernelKind.GatedLinear, KernelForm.Chunk, new KernelInputs(x["q"]!, x["k"]!, x["v"]!), 8);
        Assert.True(Equivalence.RelativeRms(o, expected) <= 1e-12);
    }

    [Theory]
    [InlineData("k", "expected [2, 10, 3, 4] like q")]
    [InlineData("g", "expected [2, 10, 3] or [2, 10, 3, 4]")]
    [InlineData("beta", "beta has shape")]
    [InlineData("h0", "expected [2, 3, 4, 5]")]
    public void Wrong_shapes_name_the_tensor(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 10, 3, 4);
        var k = wrong == "k" ? randn(2, 10, 3, 5) : randn(2, 10, 3, 4);
        var v = randn(2, 10, 3, 5);
        var g = wrong == "g" ? randn(2, 10, 3, 5) : randn(2, 10, 3);                   // neither per head nor per key channel
        var beta = wrong == "beta" ? randn(2, 10) : rand(2, 10, 3);
        var h0 = wrong == "h0" ? randn(2, 3, 5, 4) : null;
        var e = Assert.Throws<MnemoException>(() => MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Chunk,
            new KernelInputs(q, k, v, g, beta, h0)));
        Assert.Contains(expected, e.Message);
    }
}
