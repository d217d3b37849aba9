using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using static Mnemo.Tests.Memory.MatrixKernelTests;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// The fused delta chunk kernel (FusedDeltaChunk) against the composed chunk form in fp64: outputs, final state and
/// the gradients of q, k, v, β, g and h0, within the fp32 tolerance.
/// </summary>
[Collection(TorchCollection.Name)]
public class FusedDeltaChunkTests
{
    public static TheoryData<Gate, Decay, long, long, long, long, long, int, bool> Cases => new()
    {
        // gate, decay, B, T, H, Dk, Dv, chunk, h0
        { Gate.None, Decay.Zero, 2, 100, 3, 32, 48, 32, true },        // DeltaNet; T not a multiple of C; Dk ≠ Dv
        { Gate.Scalar, Decay.Moderate, 2, 100, 3, 32, 48, 32, true },
        { Gate.Scalar, Decay.Strong, 1, 150, 2, 16, 16, 64, true },
        { Gate.Scalar, Decay.Tiny, 1, 130, 2, 64, 64, 64, false },     // no initial state
        { Gate.Scalar, Decay.Zero, 2, 7, 1, 16, 32, 16, true },        // shorter than one chunk
        { Gate.Scalar, Decay.Moderate, 1, 256, 2, 128, 64, 64, true }, // Dk of 128: the 4 × 64 block and its edge rows
        { Gate.Scalar, Decay.Moderate, 1, 48, 2, 48, 80, 16, false },  // sizes not multiples of 64: the 16-wide edges
        { Gate.Scalar, Decay.Moderate, 2, 64, 2, 16, 32, 64, false },  // one chunk from the zero state: a training step at L = 64
        { Gate.None, Decay.Zero, 1, 40, 2, 32, 16, 64, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_fused_kernel_equals_the_composed_chunk_form(Gate gate, Decay decay, long b, long t, long h, long dk, long dv,
        int chunk, bool h0)
    {
        using var scope = NewDisposeScope();
        using var x64 = Inputs(MatrixKernelKind.Delta, gate, decay, b, t, h, dk, dv, seed: (int)(t + dk), h0: h0);
        using var x32 = x64.To(float32);
        var (dO, dS) = Cotangents(x64, (int)t);
        Assert.Equal(TileGemm.Supported, FusedDeltaChunk.Applies(x32["q"]!, x32["k"]!, x32["v"]!, x32["g"], x32["beta"], x32["h0"],
            chunk, null, null, false));
        var reference = Equivalence.Run(x64, x => DeltaKernel.ComposedChunk(x["q"]!, x["k"]!, x["v"]!, x["g"], x["beta"], x["h0"], chunk),
            dO, dS);
        var fused = Equivalence.Run(x32, x => DeltaKernel.Chunk(x["q"]!, x["k"]!, x["v"]!, x["g"], x["beta"], x["h0"], chunk), dO, dS);
        Equivalence.AssertClose(reference, fused, 1e-5, $"{gate} {decay} T={t} Dk={dk} Dv={dv} C={chunk}");
    }

    [Fact]
    public void Two_calls_carrying_the_state_equal_one_call_and_no_grad_gives_the_same_numbers()
    {
        using var scope = NewDisposeScope();
        using var x = Inputs(MatrixKernelKind.Delta, Gate.Scalar, Decay.Moderate, 2, 150, 2, 32, 32, seed: 5).To(float32);
        var (q, k, v, g, beta, h0) = (x["q"]!, x["k"]!, x["v"]!, x["g"]!, x["beta"]!, x["h0"]!);
        var (o, s) = DeltaKernel.Chunk(q, k, v, g, beta, h0, 32);
        Tensor Part(Tensor y, long from, long length) => y.narrow(1, from, length);
        var (o1, s1) = DeltaKernel.Chunk(Part(q, 0, 70), Part(k, 0, 70), Part(v, 0, 70), Part(g, 0, 70), Part(beta, 0, 70), h0, 32);
        var (o2, s2) = DeltaKernel.Chunk(Part(q, 70, 80), Part(k, 70, 80), Part(v, 70, 80), Part(g, 70, 80), Part(beta, 70, 80), s1, 32);
        Assert.True(Equivalence.RelativeRms(cat([o1, o2], 1), o) <= 1e-5);
        Assert.True(Equivalence.RelativeRms(s2, s) <= 1e-5);
        using var noGrad = no_grad();
        var (oPlain, sPlain) = DeltaKernel.Chunk(q, k, v, g, beta, h0, 32);
        Assert.True(oPlain.eq(o.detach()).all().item<bool>() && sPlain.eq(s.detach()).all().item<bool>(),
            "the no-grad forward differs from the autograd one");
    }
}
