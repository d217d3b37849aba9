using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Runtime;

/// <summary>Gradient checkpointing through TorchSharp's custom autograd functions: the recomputed backward gives
/// autograd's gradients, chains and nests, and leaves no tensors behind.</summary>
[Collection(TorchCollection.Name)]
public class RecomputeTests
{
    static Tensor[] F(Tensor?[] p) => [p[0]!.matmul(p[1]!).tanh(), p[1]! * p[2]!, (p[0]! + 1).sum([0])];   // p[3] is null

    static Tensor Loss(Tensor[] o) => o[0].sin().sum() + (o[1] * o[1]).sum();                              // o[2] unused

    [Fact]
    public void Recomputed_gradients_equal_the_direct_graph()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var x = randn([5, 4], float64, generator: gen).requires_grad_(true);
        var w = randn([4, 3], float64, generator: gen).requires_grad_(true);
        var c = randn([4, 3], float64, generator: gen);                       // no gradient wanted
        var direct = autograd.grad([Loss(F([x, w, c, null]))], [x, w]);
        var outputs = Recompute.Run(F, x, w, c, null);
        Assert.Equal(new long[] { 5, 3 }, outputs[0].shape);
        Assert.Equal(new long[] { 4 }, outputs[2].shape);
        var recomputed = autograd.grad([Loss(outputs)], [x, w]);
        for (int i = 0; i < 2; i++) Assert.True(Memory.Equivalence.RelativeRms(recomputed[i], direct[i]) <= 1e-15);
        using (no_grad()) Assert.False(Recompute.Run(F, x, w, c, null)[0].requires_grad);
    }

    [Fact]
    public void Recomputation_chains_and_nests()
    {
        // Two in sequence, and one inside another's function (its backward then runs inside the outer backward).
        using var scope = NewDisposeScope();
        var gen = new Generator(4);
        var x = randn([6, 6], float64, generator: gen).requires_grad_(true);
        Tensor Inner(Tensor a) => Recompute.Run(p => [p[0]!.exp() * 0.1], a)[0];
        Tensor Outer(Tensor a) => Recompute.Run(p => [Inner(p[0]!.matmul(p[0]!)).tanh()], a)[0];
        var recomputed = autograd.grad([Outer(Outer(x)).sum()], [x])[0];
        Tensor Plain(Tensor a) => ((a.matmul(a)).exp() * 0.1).tanh();
        var direct = autograd.grad([Plain(Plain(x)).sum()], [x])[0];
        Assert.True(Memory.Equivalence.RelativeRms(recomputed, direct) <= 1e-14);
    }

    [Fact]
    public void Forward_and_backward_leave_no_live_tensors()
    {
        var x = randn(8, 4).requires_grad_(true);
        var w = randn(4, 3).requires_grad_(true);
        var c = randn(4, 3);
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++)
        {
            long before = Live();
            using (var scope = NewDisposeScope()) autograd.grad([Loss(Recompute.Run(F, x, w, c, null))], [x, w]);
            using (var scope = NewDisposeScope()) using (no_grad()) Recompute.Run(F, x, w, c, null);
            if (i > 0) Assert.Equal(before, Live());                         // the first round may create lazy state
        }
    }
}
