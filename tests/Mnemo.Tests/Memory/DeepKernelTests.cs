using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// naive ≡ step ≡ chunk for every named deep-memory rule and for the memory architectures they run on: outputs,
/// final weights, chunk-start weights and momentum, and the gradients w.r.t. q, k, v, every gate and the initial
/// weights. The naive form differentiates the inner loss with autograd; the kernels use the closed form.
/// </summary>
[Collection(TorchCollection.Name)]
public class DeepKernelTests
{
    /// <summary>A memory architecture under test: depth, hidden width, activation, residual + LayerNorm wrapper.</summary>
    public sealed record Arch(int Depth, long Hidden, MemoryActivation Activation, bool Residual)
    {
        public MemoryMlp Mlp(long dk, long dv) => new(dk, dv, Depth, Hidden, Activation, Residual);
        public override string ToString() => $"depth {Depth}{(Residual ? " residual" : "")} {Activation}";
    }

    static readonly Arch Matrix = new(1, 0, MemoryActivation.Gelu, false);
    static readonly Arch TwoLayer = new(2, 6, MemoryActivation.Gelu, true);

    /// <summary>Seeded fp64 leaves for a rule: L2-normalised keys (as the layers feed them), gates in their ranges.</summary>
    internal static Equivalence.Leaves Inputs(DeepMemoryRule rule, MemoryMlp mlp, long b, long t, long h, int seed,
        double alphaHi = 0.3, double thetaHi = 0.4)
    {
        var gen = new Generator((ulong)seed);
        var x = new Equivalence.Leaves();
        Tensor Leaf(Tensor v) => v.requires_grad_(true);
        Tensor Uniform(double lo, double hi) => rand([b, t, h], float64, generator: gen) * (hi - lo) + lo;
        x.Tensors["q"] = Leaf(randn([b, t, h, mlp.KeyDim], float64, generator: gen));
        x.Tensors["k"] = Leaf(nn.functional.normalize(randn([b, t, h, mlp.KeyDim], float64, generator: gen), p: 2, dim: -1));
        x.Tensors["v"] = Leaf(randn([b, t, h, mlp.ValueDim], float64, generator: gen));
        x.Tensors["theta"] = Leaf(Uniform(0.02, thetaHi));
        x.Tensors["alpha"] = Leaf(Uniform(0, alphaHi));
        if (rule.Learner.HasMomentum) x.Tensors["eta"] = Leaf(Uniform(0.1, 0.95));
        if (rule.Window > 1) x.Tensors["gamma"] = Leaf(Uniform(0, 1));
        if (rule.Objective.NeedsDelta) x.Tensors["delta"] = Leaf(Uniform(0.2, 2));
        var w0 = DeepKernels.InitialWeights(mlp, h, float64, gen);
        for (int l = 0; l < w0.Length; l++) x.Tensors[$"w0.{l}"] = Leaf(w0[l]);
        return x;
    }

    internal static DeepInputs Of(Equivalence.Leaves x, int depth, long start = 0, long length = -1)
    {
        long n = length < 0 ? x["q"]!.shape[1] - start : length;
        Tensor? S(string name) => x[name]?.narrow(1, start, n);
        return new DeepInputs(S("q")!, S("k")!, S("v")!, S("theta")!, S("eta"), S("alpha"), S("gamma"), S("delta"),
            Enumerable.Range(0, depth).Select(l => x[$"w0.{l}"]!).ToArray());
    }

    static Func<Equivalence.Leaves, (Tensor, Tensor)> Form(DeepMemoryRule rule, MemoryMlp mlp, KernelForm form, int chunk) => x =>
    {
        var (o, s) = DeepKernels.Run(rule, mlp, form, Of(x, mlp.Depth), chunk);
        return (o, s.Flatten());
    };

    static (Tensor dO, Tensor dS) Cotangents(DeepMemoryRule rule, MemoryMlp mlp, Equivalence.Leaves x, int seed)
    {
        using var probe = NewDisposeScope();
        var gen = new Generator((ulong)seed + 1000);
        var q = x["q"]!;
        long stateSize;
        using (no_grad()) stateSize = DeepKernels.Run(rule, mlp, KernelForm.Chunk, Of(x, mlp.Depth, 0, 1), 1).State.Flatten().shape[2];
        return (randn([q.shape[0], q.shape[1], q.shape[2], mlp.ValueDim], float64, generator: gen).MoveToOuterDisposeScope(),
                randn([q.shape[0], q.shape[2], stateSize], float64, generator: gen).MoveToOuterDisposeScope());
    }

    public static TheoryData<string, Arch> NamedRules()
    {
        var data = new TheoryData<string, Arch>();
        foreach (var name in DeepMemoryRule.Named.Keys)
        {
            data.Add(name, Matrix);
            data.Add(name, TwoLayer);
        }
        data.Add("titans", new Arch(3, 5, MemoryActivation.Silu, false));
        return data;
    }

    [Theory]
    [MemberData(nameof(NamedRules))]
    public void Step_and_chunk_forms_equal_the_naive_reference_in_fp64(string name, Arch arch)
    {
        var rule = DeepMemoryRule.Named[name];
        var mlp = arch.Mlp(4, 4);
        foreach (int chunk in new[] { 1, 3, 8 })
        foreach (long t in new long[] { 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 3 }.Where(t => t >= 1).Distinct())
        {
            using var scope = NewDisposeScope();
            int seed = chunk * 100 + (int)t;
            using var x = Inputs(rule, mlp, b: 2, t: t, h: 2, seed);
            var (dO, dS) = Cotangents(rule, mlp, x, seed);
            var naive = Equivalence.Run(x, Form(rule, mlp, KernelForm.Naive, chunk), dO, dS);
            string label = $"{name} {arch} C={chunk} T={t}";
            Equivalence.AssertClose(naive, Equivalence.Run(x, Form(rule, mlp, KernelForm.Chunk, chunk), dO, dS), 1e-10, label + " chunk");
            Equivalence.AssertClose(naive, Equivalence.Run(x, Form(rule, mlp, KernelForm.Step, chunk), dO, dS), 1e-10, label + " step");
        }
    }
}
