using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>
/// How the kernel benchmark times a deep-memory rule (<see cref="DeepMemoryRule.Named"/>) and how long a sequence it
/// can afford to. Inputs are seeded fp32 leaves in fla's layout: q ~ N(0, 1/D), L2-normalised keys, v ~ N(0, 1),
/// θ ∈ [0.01, 0.05], η ∈ [0.5, 0.9] (momentum rules), α ∈ [0, 0.01], γ ∈ [0, 1] (windows), δ ∈ [0.5, 2] (Huber),
/// w0 from <see cref="DeepKernels.InitialWeights"/>; forward+backward takes the gradients of sum(o·dO) + Σ_l sum(W_l·dW_l)
/// w.r.t. every input, w0 included.
/// </summary>
static class DeepKernelBench
{
    public static MemoryMlp Mlp(KernelBenchOptions o, int d) => new(d, d, o.Depth, o.DeepHidden ?? 4L * d, MemoryActivation.Gelu, false);

    /// <summary>Times one deep rule in one form at one shape: forward (no_grad) and forward+backward.</summary>
    public static (TimingStats Forward, TimingStats ForwardBackward) Measure(KernelBenchOptions o, DeepMemoryRule rule, KernelForm form,
        int d, int t)
    {
        using var scope = NewDisposeScope();
        var mlp = Mlp(o, d);
        var (x, leaves, dO, dW) = Inputs(rule, mlp, o.Batch, o.Heads, t, o.Seed);
        var forward = Timing.Measure(() =>
        {
            using var _ = no_grad();
            DeepKernels.Run(rule, mlp, form, x, o.ChunkSize);
        }, o.Warmup, o.Repeats);
        var both = Timing.Measure(() =>
        {
            var (y, s) = DeepKernels.Run(rule, mlp, form, x, o.ChunkSize);
            var loss = (y * dO).sum();
            for (int l = 0; l < dW.Length; l++) loss = loss + (s.Weights[l] * dW[l]).sum();
            torch.autograd.grad([loss], leaves);
        }, o.Warmup, o.Repeats);
        return (forward, both);
    }

    static (DeepInputs X, Tensor[] Leaves, Tensor DO, Tensor[] DW) Inputs(DeepMemoryRule rule, MemoryMlp mlp, int batch, int heads, int t,
        int seed)
    {
        long d = mlp.KeyDim;
        var gen = new Generator((ulong)(seed + 7919L * d + t + 104729L * rule.Name.Length));
        Tensor Leaf(Tensor a) => a.detach().requires_grad_(true);
        Tensor Uniform(double lo, double hi) => Leaf(rand([batch, t, heads], generator: gen) * (hi - lo) + lo);
        var q = Leaf(randn([batch, t, heads, d], generator: gen) * Math.Pow(d, -0.5));
        var k = Leaf(nn.functional.normalize(randn([batch, t, heads, d], generator: gen), p: 2, dim: -1));
        var v = Leaf(randn([batch, t, heads, mlp.ValueDim], generator: gen));
        var theta = Uniform(0.01, 0.05);
        var eta = rule.Learner.HasMomentum ? Uniform(0.5, 0.9) : null;
        var alpha = Uniform(0, 0.01);
        var gamma = rule.Window > 1 ? Uniform(0, 1) : null;
        var delta = rule.Objective.NeedsDelta ? Uniform(0.5, 2) : null;
        var w0 = DeepKernels.InitialWeights(mlp, heads, ScalarType.Float32, gen).Select(Leaf).ToArray();
        var leaves = new[] { q, k, v, theta, eta, alpha, gamma, delta }.OfType<Tensor>().Concat(w0).ToArray();
        var dO = randn([batch, t, heads, mlp.ValueDim], generator: gen);
        var dW = mlp.Layers.Select(s => randn([batch, heads, s.In, s.Out], generator: gen)).ToArray();
        gen.Dispose();
        return (new DeepInputs(q, k, v, theta, eta, alpha, gamma, delta, w0), leaves, dO, dW);
    }

    /// <summary>
    /// A rough upper estimate of the bytes autograd keeps for forward+backward of a form at length t (fp32). The
    /// token-by-token forms keep a few copies of every token's weights, B·H·T·Σ in·out floats each (GD ~6, + 3 for a
    /// retention map, Muon + 5 per Newton–Schulz step; the naive reference twice that for its double-backward graph).
    /// The chunk form works in blocks of b tokens (<see cref="DeepKernel.BlockSize"/>) and never keeps every token's
    /// weights: ~2 copies of each block's end weights (+ 2 for momentum) and ~8·B·H·T·(b + c + hidden + D) activation
    /// floats per layer; Muon's blocks are recomputed in the backward, so only their inputs and outputs stay (~4 copies
    /// of the block-end weights) plus one block's graph at a time (the per-token copies above for b tokens). Checked
    /// against the live heap bytes (glibc's mallinfo2) of titans and moneta at T = 1024, D = 64: 0.44 and 0.70 GB
    /// measured, 0.54 and 0.88 GB estimated.
    /// </summary>
    public static double Footprint(KernelBenchOptions o, DeepMemoryRule rule, KernelForm form, int d, long t)
    {
        var mlp = Mlp(o, d);
        double p = mlp.Layers.Sum(s => (double)s.In * s.Out), rows = (double)o.Batch * o.Heads;
        double copies = 6 + (rule.Retention.IsIdentity ? 0 : 3) + (rule.Learner is Muon muon ? 5 * muon.Steps : 0);
        int block = DeepKernel.BlockSize(rule, mlp, o.Batch * o.Heads, o.ChunkSize);
        double floats = form switch
        {
            KernelForm.Chunk when rule.Learner is Muon => 4 * rows * Math.Ceiling((double)t / block) * p + copies * rows * block * p,
            KernelForm.Chunk => (2 + (rule.Learner.HasMomentum ? 2 : 0)) * rows * Math.Ceiling((double)t / block) * p
                                + 8 * rows * t * (block + rule.Window + mlp.Hidden + d) * mlp.Depth,
            KernelForm.Naive => 2 * copies * rows * t * p,
            _ => copies * rows * t * p,
        };
        return 4 * floats;
    }

    /// <summary>The longest length ≤ <paramref name="t"/> (t halved, not below <paramref name="floor"/>) whose
    /// estimated forward+backward footprint fits the budget.</summary>
    public static int Affordable(KernelBenchOptions o, DeepMemoryRule rule, KernelForm form, int d, int t, int floor)
    {
        int fit = t;
        while (fit > floor && Footprint(o, rule, form, d, fit) > o.DeepMemoryBudgetBytes) fit = Math.Max(floor, fit / 2);
        return fit;
    }
}
