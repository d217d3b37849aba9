using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>The fused one-token step (FusedStep) against the composed step forms of both kernels it replaces in decoding.</summary>
public class FusedStepTests
{
    public enum Gate { None, PerHead, PerChannel, Zero, Strong }

    static Tensor? LogGate(Gate gate, long b, long h, long dk) => gate switch
    {
        Gate.None => null,
        Gate.PerHead => -rand(b, h) * 2,
        Gate.PerChannel => -rand(b, h, dk) * 2,
        Gate.Zero => zeros(b, h),                                              // a = 1: no decay
        _ => full(new long[] { b, h }, -30.0),                                 // a ≈ 1e-13: the state all but forgotten
    };

    public static TheoryData<MatrixKernelKind, Gate, long, long, long, long> Steps()
    {
        var data = new TheoryData<MatrixKernelKind, Gate, long, long, long, long>();
        foreach (var kind in new[] { MatrixKernelKind.GatedLinear, MatrixKernelKind.Delta })
        {
            data.Add(kind, Gate.None, 1, 1, 16, 8);
            data.Add(kind, Gate.PerHead, 2, 3, 5, 16);
            data.Add(kind, Gate.PerChannel, 2, 3, 7, 24);
            data.Add(kind, Gate.Zero, 1, 4, 64, 64);
            data.Add(kind, Gate.Strong, 3, 2, 9, 8);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public void The_fused_step_equals_the_composed_one(MatrixKernelKind kind, Gate gate, long b, long h, long dk, long dv)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Initialise();
        manual_seed(11);
        using var noGrad = no_grad();
        bool delta = kind == MatrixKernelKind.Delta;
        var (q, k, v, state) = (randn(b, h, dk), nn.functional.normalize(randn(b, h, dk), dim: -1), randn(b, h, dv), randn(b, h, dk, dv));
        var (g, beta) = (LogGate(gate, b, h, dk), delta ? rand(b, h) : null);
        var before = state.clone();
        Assert.True(FusedStep.Applies(q, k, v, g, beta, state));
        var (o, s) = delta ? FusedStep.Delta(q, k, v, g, beta!, state) : FusedStep.GatedLinear(q, k, v, g, state);
        var (oRef, sRef) = delta ? DeltaKernel.Step(q, k, v, g, beta!, state) : GatedLinearKernel.Step(q, k, v, g, state);
        Assert.True(Equivalence.RelativeRms(o, oRef) <= 1e-6, $"o at {Equivalence.RelativeRms(o, oRef):E2}");
        Assert.True(Equivalence.RelativeRms(s, sRef) <= 1e-6, $"state at {Equivalence.RelativeRms(s, sRef):E2}");
        // The input state is left as it was: the step writes a new one.
        Assert.True(state.eq(before).all().item<bool>());
    }

    [Theory]
    [InlineData(Gate.PerHead, false)]
    [InlineData(Gate.PerChannel, false)]
    [InlineData(Gate.PerChannel, true)]      // Comba's and RWKV-7's order: the erase vector reads the state before the decay
    [InlineData(Gate.Strong, true)]
    public void The_fused_step_takes_an_erase_vector(Gate gate, bool readBeforeDecay)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Initialise();
        manual_seed(12);
        using var noGrad = no_grad();
        long b = 2, h = 3, dk = 7, dv = 16;
        var (q, k, v, state) = (randn(b, h, dk), nn.functional.normalize(randn(b, h, dk), dim: -1), randn(b, h, dv), randn(b, h, dk, dv));
        var (g, erase) = (LogGate(gate, b, h, dk), rand(b, h, dk) * nn.functional.normalize(randn(b, h, dk), dim: -1));
        var (o, s) = FusedStep.Delta(q, k, v, g, null, state, erase, readBeforeDecay);
        var (oRef, sRef) = DeltaKernel.Step(q, k, v, g, null, state, erase, null, readBeforeDecay);
        Assert.True(Equivalence.RelativeRms(o, oRef) <= 1e-6, $"o at {Equivalence.RelativeRms(o, oRef):E2}");
        Assert.True(Equivalence.RelativeRms(s, sRef) <= 1e-6, $"state at {Equivalence.RelativeRms(s, sRef):E2}");
    }

    [Fact]
    public void Steps_it_cannot_take_go_to_the_composed_form()
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Initialise();
        var (q, k, state) = (randn(1, 2, 4), randn(1, 2, 4), randn(1, 2, 4, 8));
        Assert.False(FusedStep.Applies(q, k, randn(1, 2, 12), null, null, randn(1, 2, 4, 12)));       // Dv not a multiple of 8
        Assert.False(FusedStep.Applies(q.to(ScalarType.Float64), k, randn(1, 2, 8), null, null, state));
        Assert.False(FusedStep.Applies(q.requires_grad_(), k, randn(1, 2, 8), null, null, state));   // a gradient is wanted
        Assert.Throws<ArgumentException>(() => FusedStep.GatedLinear(q, k, randn(1, 2, 8), null, state));
    }
}
