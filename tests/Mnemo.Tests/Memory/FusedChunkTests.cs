using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using static Mnemo.Tests.Memory.MatrixKernelTests;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// The fused chunk kernels (FusedChunk) against the composed chunk forms in fp64: outputs, final state and the gradients
/// of q, k, v, β, g and h0, within the fp32 tolerance.
/// </summary>
[Collection(TorchCollection.Name)]
public class FusedChunkTests
{
    public static TheoryData<MatrixKernelKind, Gate, Decay, long, long, long, long, long, int, bool> Cases()
    {
        var data = new TheoryData<MatrixKernelKind, Gate, Decay, long, long, long, long, long, int, bool>();
        foreach (var kind in new[] { MatrixKernelKind.Delta, MatrixKernelKind.GatedLinear })
        {
            // gate, decay, B, T, H, Dk, Dv, chunk, h0
            data.Add(kind, Gate.None, Decay.Zero, 2, 100, 3, 32, 48, 32, true);      // no gate; T not a multiple of C; Dk ≠ Dv
            data.Add(kind, Gate.Scalar, Decay.Moderate, 2, 100, 3, 32, 48, 32, true);
            data.Add(kind, Gate.Scalar, Decay.Strong, 1, 150, 2, 16, 16, 64, true);
            data.Add(kind, Gate.Scalar, Decay.Tiny, 1, 130, 2, 64, 64, 64, false);   // no initial state
            data.Add(kind, Gate.Scalar, Decay.Zero, 2, 7, 1, 16, 32, 16, true);      // shorter than one chunk
            data.Add(kind, Gate.Scalar, Decay.Moderate, 1, 256, 2, 128, 64, 64, true); // Dk of 128
            data.Add(kind, Gate.Scalar, Decay.Moderate, 1, 48, 2, 48, 80, 16, false);  // sizes not multiples of 64: 16-wide edges
            data.Add(kind, Gate.Scalar, Decay.Moderate, 2, 64, 2, 16, 32, 64, false);  // one chunk from the zero state (L = 64 training)
            data.Add(kind, Gate.None, Decay.Zero, 1, 40, 2, 32, 16, 64, false);
            data.Add(kind, Gate.Scalar, Decay.Strong, 1, 90, 2, 16, 32, 40, true);     // a chunk of 40, run as 48
        }
        return data;
    }

    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(MatrixKernelKind kind, bool composed, int chunk) => x =>
        (kind, composed) switch
        {
            (MatrixKernelKind.Delta, true) => DeltaKernel.ComposedChunk(x["q"]!, x["k"]!, x["v"]!, x["g"], x["beta"], x["h0"], chunk),
            (MatrixKernelKind.Delta, false) => DeltaKernel.Chunk(x["q"]!, x["k"]!, x["v"]!, x["g"], x["beta"], x["h0"], chunk),
            (_, true) => GatedLinearKernel.ComposedChunk(x["q"]!, x["k"]!, x["v"]!, x["g"], x["h0"], chunk),
            // the pass itself, also where GatedLinearKernel.Chunk keeps the composed form (a single chunk)
            _ when TileGemm.Supported => FusedChunk.GatedLinear(x["q"]!, x["k"]!, x["v"]!, x["g"], x["h0"], chunk),
            _ => GatedLinearKernel.Chunk(x["q"]!, x["k"]!, x["v"]!, x["g"], x["h0"], chunk),
        };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_fused_kernel_equals_the_composed_chunk_form(MatrixKernelKind kind, Gate gate, Decay decay, long b, long t, long h,
        long dk, long dv, int chunk, bool h0)
    {
        using var scope = NewDisposeScope();
        using var x64 = Inputs(kind, gate, decay, b, t, h, dk, dv, seed: (int)(t + dk), h0: h0);
        using var x32 = x64.To(float32);
        var (dO, dS) = Cotangents(x64, (int)t);
        var (q, k, v) = (x32["q"]!, x32["k"]!, x32["v"]!);
        bool fused = kind == MatrixKernelKind.Delta
            ? FusedChunk.AppliesToDelta(q, k, v, x32["g"], x32["beta"], x32["h0"], chunk, null, null, false)
            : FusedChunk.AppliesToGatedLinear(q, k, v, x32["g"], x32["h0"], chunk);
        // the gated linear kernel keeps its composed form for a single chunk (FusedChunk.AppliesToGatedLinear)
        Assert.Equal(TileGemm.Supported && (kind == MatrixKernelKind.Delta || t > chunk), fused);
        var reference = Equivalence.Run(x64, Form(kind, composed: true, chunk), dO, dS);
        var actual = Equivalence.Run(x32, Form(kind, composed: false, chunk), dO, dS);
        Equivalence.AssertClose(reference, actual, 1e-5, $"{kind} {gate} {decay} T={t} Dk={dk} Dv={dv} C={chunk}");
    }

    [Theory]
    [InlineData(MatrixKernelKind.Delta, 100L)]
    [InlineData(MatrixKernelKind.Delta, 64L)]
    [InlineData(MatrixKernelKind.GatedLinear, 100L)]
    [InlineData(MatrixKernelKind.GatedLinear, 64L)]
    public void Without_a_gradient_on_the_final_state_the_gradients_still_match(MatrixKernelKind kind, long t)
    {
        // Training's case: only the outputs reach the loss, so the last chunk's terms through dS are skipped.
        using var scope = NewDisposeScope();
        using var x64 = Inputs(kind, Gate.Scalar, Decay.Moderate, 2, t, 2, 32, 32, seed: 9, h0: false);
        using var x32 = x64.To(float32);
        var (dO, dS) = Cotangents(x64, 9);
        dS = zeros_like(dS);
        var reference = Equivalence.Run(x64, Form(kind, composed: true, 32), dO, dS);
        Equivalence.AssertClose(reference, Equivalence.Run(x32, Form(kind, composed: false, 32), dO, dS), 1e-5, $"{kind} T={t}");
    }

    [Theory]
    [InlineData(MatrixKernelKind.Delta)]
    [InlineData(MatrixKernelKind.GatedLinear)]
    public void Gradients_of_some_inputs_only_match_with_h0_given_without_one(MatrixKernelKind kind)
    {
        using var scope = NewDisposeScope();
        using var x64 = Inputs(kind, Gate.Scalar, Decay.Moderate, 2, 90, 2, 32, 16, seed: 13);
        using var x32 = x64.To(float32);
        var (dO, dS) = Cotangents(x64, 13);
        string[] wanted = ["q", "v"];                                              // k, g, β and h0 without gradients
        Tensor[] Gradients(Equivalence.Leaves x, bool composed)
        {
            var leaves = new Equivalence.Leaves();
            foreach (var (name, leaf) in x.Tensors) leaves.Tensors[name] = leaf.detach().requires_grad_(wanted.Contains(name));
            var (o, s) = Form(kind, composed, 32)(leaves);
            var loss = (o * dO.to(o.dtype)).sum() + (s * dS.to(s.dtype)).sum();
            return autograd.grad([loss], [.. wanted.Select(n => leaves[n]!)]).ToArray();
        }
        var (reference, actual) = (Gradients(x64, composed: true), Gradients(x32, composed: false));
        for (int i = 0; i < wanted.Length; i++)
        {
            double e = Equivalence.RelativeRms(actual[i], reference[i]);
            Assert.True(e <= 1e-5, $"d{wanted[i]}: {e:E2}");
        }
    }

    [Theory]
    [InlineData(MatrixKernelKind.Delta)]
    [InlineData(MatrixKernelKind.GatedLinear)]
    public void Second_derivatives_equal_the_composed_forms(MatrixKernelKind kind)
    {
        // create_graph: the written-out backward has no graph, so the composed form is differentiated instead.
        using var scope = NewDisposeScope();
        using var x64 = Inputs(kind, Gate.Scalar, Decay.Moderate, 1, 40, 2, 16, 16, seed: 3);
        using var x32 = x64.To(float32);
        Tensor SecondOrder(Equivalence.Leaves x, bool composed)
        {
            var (o, s) = Form(kind, composed, 16)(x);
            var dq = autograd.grad([o.square().sum() + s.square().sum()], [x["q"]!], retain_graph: true, create_graph: true)[0];
            return autograd.grad([dq.square().sum()], [x["v"]!])[0];                 // ∂/∂v of ‖∂L/∂q‖²
        }
        double e = Equivalence.RelativeRms(SecondOrder(x32, composed: false), SecondOrder(x64, composed: true));
        Assert.True(e <= 1e-5, $"second derivative at {e:E2}");
    }

    [Theory]
    [InlineData(MatrixKernelKind.Delta)]
    [InlineData(MatrixKernelKind.GatedLinear)]
    public void Two_calls_carrying_the_state_equal_one_call_and_no_grad_gives_the_same_numbers(MatrixKernelKind kind)
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(kind, Gate.Scalar, Decay.Moderate, 2, 150, 2, 32, 32, seed: 5).To(float32);
        var run = Form(kind, composed: false, 32);
        Equivalence.Leaves Part(long from, long length)
        {
            var part = new Equivalence.Leaves();
            foreach (var (name, leaf) in x.Tensors) part.Tensors[name] = name == "h0" ? leaf : leaf.narrow(1, from, length);
            return part;
        }
        var (o, s) = run(x);
        var (o1, s1) = run(Part(0, 70));
        var second = Part(70, 80);
        second.Tensors["h0"] = s1;
        var (o2, s2) = run(second);
        Assert.True(Equivalence.RelativeRms(cat([o1, o2], 1), o) <= 1e-5);
        Assert.True(Equivalence.RelativeRms(s2, s) <= 1e-5);
        using var noGrad = no_grad();
        var (oPlain, sPlain) = run(x);
        Assert.True(oPlain.eq(o.detach()).all().item<bool>() && sPlain.eq(s.detach()).all().item<bool>(),
            "the no-grad forward differs from the autograd one");
    }
}
