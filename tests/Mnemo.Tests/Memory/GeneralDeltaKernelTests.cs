using Mnemo.Memory.Matrix;
using TorchSharp;
using static Mnemo.Tests.Memory.MatrixKernelTests;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// The generalized delta rule S_t = (I − a_t b_tᵀ) D_t S_{t−1} + k_t v_tᵀ (or (D_t − a_t b_tᵀ) S_{t−1} + k_t v_tᵀ when
/// b reads the state before the decay): naive ≡ step ≡ chunk for outputs, final state and every gradient, and the plain delta
/// rule as its special case.
/// </summary>
[Collection(TorchCollection.Name)]
public class GeneralDeltaKernelTests
{
    /// <summary>Which vectors the rule chooses: a = k or its own a; b read after the decay or before it.</summary>
    public enum Shape
    {
        /// <summary>GDN-2: b = e ⊙ k with a gate per key channel, a = k.</summary>
        ErasedKey,
        /// <summary>a ≠ k, b read after the decay.</summary>
        OwnTransition,
        /// <summary>Comba: b = β p (another unit vector), a = k, b reads the state before the decay.</summary>
        ReadBefore,
        /// <summary>RWKV-7: b = κ (unit), a = κ ⊙ c, b reads the state before the decay.</summary>
        ReadBeforeOwnTransition,
    }

    static bool Before(Shape s) => s is Shape.ReadBefore or Shape.ReadBeforeOwnTransition;

    static bool OwnA(Shape s) => s is Shape.OwnTransition or Shape.ReadBeforeOwnTransition;

    /// <summary>Seeded fp64 leaves with the shape's vectors; every transition has its eigenvalues in [−1, 1].</summary>
    static Equivalence.Leaves Inputs(Shape shape, Gate gate, Decay decay, long b, long t, long h, long dk, long dv, int seed,
        bool h0 = true)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        Tensor Unit() => nn.functional.normalize(randn([b, t, h, dk], float64, generator: gen), p: 2, dim: -1);
        Tensor Unif(params long[] dims) => rand(dims, float64, generator: gen) * 0.9 + 0.05;
        x.Tensors["q"] = Leaf(randn([b, t, h, dk], float64, generator: gen));
        var k = Unit();
        x.Tensors["k"] = Leaf(k);
        x.Tensors["v"] = Leaf(randn([b, t, h, dv], float64, generator: gen));
        var (lo, hi) = Range(decay);
        if (gate == Gate.Scalar) x.Tensors["g"] = Leaf(rand([b, t, h], float64, generator: gen) * (hi - lo) + lo);
        if (gate == Gate.Channel) x.Tensors["g"] = Leaf(rand([b, t, h, dk], float64, generator: gen) * (hi - lo) + lo);
        switch (shape)
        {
            case Shape.ErasedKey:
                x.Tensors["erase"] = Leaf(Unif(b, t, h, dk) * k.detach());
                break;
            case Shape.ReadBefore:
                x.Tensors["erase"] = Leaf(Unif(b, t, h, 1) * Unit());
                break;
            default:
                var kappa = Unit();
                x.Tensors["erase"] = Leaf(kappa);
                x.Tensors["transition"] = Leaf(kappa.detach() * Unif(b, t, h, dk));
                break;
        }
        if (h0) x.Tensors["h0"] = Leaf(randn([b, h, dk, dv], float64, generator: gen) * 0.5);
        return x;
    }

    static KernelInputs Kernel(Equivalence.Leaves x, Shape shape) =>
        new(x["q"]!, x["k"]!, x["v"]!, x["g"], null, x["h0"], x["erase"], x["transition"], Before(shape));

    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(Shape shape, KernelForm form, int chunk = 64) =>
        x => MatrixKernels.Run(MatrixKernelKind.Delta, form, Kernel(x, shape), chunk);

    public static TheoryData<Shape, Gate, Decay> Cases()
    {
        var cases = new TheoryData<Shape, Gate, Decay>();
        foreach (var shape in Enum.GetValues<Shape>())
        {
            cases.Add(shape, Gate.None, Decay.Zero);
            cases.Add(shape, Gate.Scalar, Decay.Moderate);
            cases.Add(shape, Gate.Scalar, Decay.Strong);
            cases.Add(shape, Gate.Channel, Decay.Moderate);
            cases.Add(shape, Gate.Channel, Decay.Strong);
            cases.Add(shape, Gate.Channel, Decay.Tiny);
        }
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(Shape shape, Gate gate, Decay decay)
    {
        foreach (int chunk in new[] { 1, 16 })
            foreach (long t in new long[] { 1, 15, 16, 17, 37 })
                foreach (bool h0 in new[] { true, false })
                {
                    using var scope = NewDisposeScope();
                    int seed = chunk * 1000 + (int)t + (h0 ? 0 : 500);
                    using var x = Inputs(shape, gate, decay, b: 2, t: t, h: 2, dk: 5, dv: 7, seed, h0);
                    var (dO, dS) = Cotangents(x, seed);
                    var naive = Equivalence.Run(x, Form(shape, KernelForm.Naive), dO, dS);
                    string label = $"{shape} g={gate} decay={decay} C={chunk} T={t} h0={h0}";
                    var chunked = Equivalence.Run(x, Form(shape, KernelForm.Chunk, chunk), dO, dS);
                    Equivalence.AssertClose(naive, chunked, 1e-10, label + " chunk");
                    if (chunk == 16)
                        Equivalence.AssertClose(naive, Equivalence.Run(x, Form(shape, KernelForm.Step), dO, dS), 1e-10, label + " step");
                }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fp32_forms_are_within_1e_5_of_the_fp64_reference(Shape shape, Gate gate, Decay decay)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(shape, gate, decay, b: 2, t: 150, h: 2, dk: 16, dv: 16, seed: 7);
        var (dO, dS) = Cotangents(x, 7);
        var reference = Equivalence.Run(x, Form(shape, KernelForm.Naive), dO, dS);
        using var x32 = x.To(float32);
        foreach (var (form, chunk) in new[] { (KernelForm.Chunk, 64), (KernelForm.Step, 64) })
            Equivalence.AssertClose(reference, Equivalence.Run(x32, Form(shape, form, chunk), dO, dS), 1e-5,
                $"{shape} g={gate} decay={decay} fp32 {form}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Two_calls_carrying_the_state_equal_one_call(Shape shape, Gate gate, Decay decay)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(shape, gate, decay, b: 2, t: 77, h: 3, dk: 8, dv: 6, seed: 3);
        KernelInputs Slice(long start, long length)
        {
            Tensor? Part(string name) => x[name]?.narrow(1, start, length);
            return new(Part("q")!, Part("k")!, Part("v")!, Part("g"), null, x["h0"], Part("erase"), Part("transition"), Before(shape));
        }
        var whole = MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Chunk, Slice(0, 77), 16);
        var first = MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Chunk, Slice(0, 40), 16);
        var second = MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Chunk, Slice(40, 37) with { H0 = first.State }, 16);
        Assert.True(Equivalence.RelativeRms(cat([first.O, second.O], 1), whole.O) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(second.State, whole.State) <= 1e-12);
        // and one token at a time, as a stream decodes (the fused step in fp32 is FusedStepTests' business)
        var s = x["h0"]!;
        var outputs = new List<Tensor>();
        for (long i = 0; i < 77; i++)
        {
            var (o, next) = MatrixKernels.Continue(MatrixKernelKind.Delta, Slice(i, 1) with { H0 = s }, 16);
            s = next;
            outputs.Add(o);
        }
        Assert.True(Equivalence.RelativeRms(cat(outputs, 1), whole.O) <= 1e-12);
        Assert.True(Equivalence.RelativeRms(s, whole.State) <= 1e-12);
    }

    [Theory]
    [InlineData(Gate.None)]
    [InlineData(Gate.Scalar)]
    [InlineData(Gate.Channel)]
    public void The_delta_rule_is_the_case_a_equal_k_and_b_equal_beta_k(Gate gate)
    {
        // β given to the kernel, and the same rule spelled out as b = β k, a = k and the value β v: every form agrees
        // with the β-form's naive reference, an independent per-token loop written with β.
        using var scope = NewDisposeScope();
        using var x = Inputs(Shape.ErasedKey, gate, Decay.Moderate, b: 2, t: 37, h: 2, dk: 5, dv: 7, seed: 21);
        x.Tensors.Remove("erase", out var unused);
        unused!.Dispose();
        x.Tensors["beta"] = (rand([2, 37, 2], float64, generator: new Generator(22)) * 0.9 + 0.05).requires_grad_(true);
        (Tensor, Tensor) Spelled(Equivalence.Leaves y, KernelForm form)
        {
            var beta = y["beta"]!.unsqueeze(-1);
            return MatrixKernels.Run(MatrixKernelKind.Delta, form, new KernelInputs(y["q"]!, y["k"]!, beta * y["v"]!, y["g"], null, y["h0"],
                Erase: beta * y["k"]!), 16);
        }
        var (dO, dS) = Cotangents(x, 21);
        var reference = Equivalence.Run(x, y => MatrixKernels.Run(MatrixKernelKind.Delta, KernelForm.Naive,
            new KernelInputs(y["q"]!, y["k"]!, y["v"]!, y["g"], y["beta"], y["h0"])), dO, dS);
        foreach (var form in Enum.GetValues<KernelForm>())
        {
            Equivalence.AssertClose(reference, Equivalence.Run(x, y => Spelled(y, form), dO, dS), 1e-10, $"g={gate} {form}");
        }
    }

    [Theory]
    [InlineData("erase", "erase has shape")]
    [InlineData("transition", "transition has shape")]
    [InlineData("both", "not both")]
    [InlineData("alone", "goes with an erase vector")]
    [InlineData("linear", "belong to the delta rule")]
    public void Wrong_inputs_name_the_tensor(string wrong, string expected)
    {
        using var scope = NewDisposeScope();
        var (q, k, v) = (randn(2, 10, 3, 4), randn(2, 10, 3, 4), randn(2, 10, 3, 5));
        var x = wrong switch
        {
            "erase" => new KernelInputs(q, k, v, Erase: randn(2, 10, 3, 5)),
            "transition" => new KernelInputs(q, k, v, Erase: randn(2, 10, 3, 4), Transition: randn(2, 10, 4)),
            "both" => new KernelInputs(q, k, v, Beta: rand(2, 10, 3), Erase: randn(2, 10, 3, 4)),
            "alone" => new KernelInputs(q, k, v, Beta: rand(2, 10, 3), ReadBeforeDecay: true),
            _ => new KernelInputs(q, k, v, Erase: randn(2, 10, 3, 4)),
        };
        var kind = wrong == "linear" ? MatrixKernelKind.GatedLinear : MatrixKernelKind.Delta;
        var e = Assert.Throws<MnemoException>(() => MatrixKernels.Run(kind, KernelForm.Chunk, x));
        Assert.Contains(expected, e.Message);
    }
}
