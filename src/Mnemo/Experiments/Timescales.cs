using System.Diagnostics;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tasks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>How the task grows (docs/timescales.md#the-curricula).</summary>
public enum Curriculum
{
    /// <summary>One head, for the current N; N moves up when it is solved.</summary>
    Single,
    /// <summary>A head for every N from 2 to the current one, trained together; a new head joins when all are solved.</summary>
    Multi,
}

/// <summary>The network, the task and the budget of one curriculum run (docs/timescales.md).</summary>
public sealed record TimescalesConfig
{
    public BitTaskKind Task { get; init; } = BitTaskKind.Parity;
    public int Units { get; init; } = 128;
    public int Batch { get; init; } = 128;
    /// <summary>Training steps in all (the fixed budget).</summary>
    public int Steps { get; init; } = 6000;
    /// <summary>Steps between tests (the paper's epoch: 600).</summary>
    public int EpochSteps { get; init; } = 100;
    /// <summary>Test batches of <see cref="Batch"/> streams per test.</summary>
    public int TestBatches { get; init; } = 4;
    public double Lr { get; init; } = 0.05;
    public double Momentum { get; init; } = 0.1;
    public double GradClip { get; init; } = 2.0;
    /// <summary>N is solved when the mean accuracy of the trained heads and the newest head's both exceed this.</summary>
    public double Threshold { get; init; } = 0.98;
    public int MaxN { get; init; } = 64;
    /// <summary>The N whose head the robustness is measured on; 0 = the largest solved. A fixed N compares curricula that
    /// reached different N on the same task.</summary>
    public int RobustnessN { get; init; }

    public void Validate()
    {
        foreach (var (name, value) in new[] { ("units", Units), ("batch", Batch), ("steps", Steps), ("epoch steps", EpochSteps),
            ("test batches", TestBatches) })
            if (value < 1) throw new MnemoException($"{name} must be at least 1, got {value}");
        if (MaxN < 2) throw new MnemoException($"the largest N must be at least 2, got {MaxN}");
        if (RobustnessN != 0 && (RobustnessN < 2 || RobustnessN > MaxN))
            throw new MnemoException($"the robustness N must be 0 (the largest solved) or in [2, {MaxN}], got {RobustnessN}");
        if (!(Lr > 0) || !double.IsFinite(Lr)) throw new MnemoException($"lr must be a positive number, got {Lr}");
        if (Threshold is <= 0.5 or > 1) throw new MnemoException($"the solve threshold must be in (0.5, 1], got {Threshold}");
    }
}

/// <summary>Accuracy of head N with neurons silenced or noise added (amount 0: unperturbed).</summary>
public sealed record Perturbation(string Kind, double Amount, int N, double Accuracy);

/// <summary>What one run reached: the largest N solved, the step each N was solved at, the learned τ, the accuracy of every
/// head at the end, and its robustness.</summary>
public sealed record TimescalesRun(string Curriculum, string Task, int Seed, int LargestN, int[] SolvedAt, float[] Tau,
    double[] FinalAccuracy, Perturbation[] Perturbations, double Seconds);

/// <summary>
/// Emergent timescales (Khajehabdollahi, Zeraati et al. 2024, arXiv 2309.12927; docs/timescales.md): a leaky RNN with a
/// trainable τ per neuron (<see cref="LeakyRnn"/>) reads a stream of bits and answers N-parity or N-DMS for each N through
/// a linear head per N; the single-head and multi-head curricula move N up as it is solved, within a fixed step budget.
/// </summary>
public static class Timescales
{
    /// <summary>A batch of streams [B, M] (bits 0/1 as floats) of one length M ∈ [N + 2, 4N + 2), and the labels [B] of
    /// every N in <paramref name="ns"/>.</summary>
    public static (Tensor Bits, Tensor[] Labels) Batch(BitTaskKind task, int batch, int n, IReadOnlyList<int> ns, Generator gen)
    {
        using var scope = NewDisposeScope();
        long m = randint(n + 2, 4 * n + 2, [1], generator: gen).item<long>();
        var p = task == BitTaskKind.Parity ? rand([batch, 1], generator: gen) : full([batch, 1], 0.5);  // parity: p ~ U(0, 1) per stream
        var bits = rand([batch, m], generator: gen).lt(p).to(ScalarType.Float32);
        var labels = ns.Select(k => Label(task, bits, k).MoveToOuterDisposeScope()).ToArray();
        return (bits.MoveToOuterDisposeScope(), labels);
    }

    /// <summary>N-parity: the sum of the last N bits mod 2; N-DMS: 1 iff x[−N] == x[−1]. bits [B, M] → int64 [B].</summary>
    public static Tensor Label(BitTaskKind task, Tensor bits, int n)
    {
        long m = bits.shape[1];
        if (n > m) throw new ArgumentOutOfRangeException(nameof(n), $"N = {n} is longer than the stream ({m})");
        return task == BitTaskKind.Parity
            ? bits.narrow(1, m - n, n).sum([1]).remainder(2).to(ScalarType.Int64)
            : bits.select(1, m - n).eq(bits.select(1, m - 1)).to(ScalarType.Int64);
    }

    /// <summary>The heads a curriculum trains at N.</summary>
    public static int[] Heads(Curriculum curriculum, int n) => curriculum == Curriculum.Single ? [n] : [.. Enumerable.Range(2, n - 1)];

    sealed class Network : nn.Module<Tensor, Tensor>
    {
        readonly LeakyRnn rnn;
        readonly ModuleList<Linear> heads;

        public Network(int units, int maxN) : base("TimescaleNetwork")
        {
            rnn = new LeakyRnn(1, units);
            heads = nn.ModuleList(Enumerable.Range(2, maxN - 1).Select(_ => nn.Linear(units, 2)).ToArray());
            RegisterComponents();
        }

        public LeakyRnn Rnn => rnn;

        /// <summary>The final state [B, H] of bits [B, M].</summary>
        public override Tensor forward(Tensor bits) => rnn.forward(bits.unsqueeze(-1)).select(1, -1);

        public Tensor Head(int n, Tensor state) => heads[n - 2].forward(state);
    }

    /// <summary>Trains one curriculum within the budget and measures it. <paramref name="log"/> gets a line per solved N.</summary>
    public static TimescalesRun Run(Curriculum curriculum, int seed, TimescalesConfig c, Action<string>? log = null)
    {
        c.Validate();
        var clock = Stopwatch.StartNew();
        TorchRuntime.Seed(seed);
        var net = new Network(c.Units, c.MaxN);
        var sgd = optim.SGD(net.parameters(), c.Lr, momentum: c.Momentum, nesterov: true);
        using var gen = new Generator((ulong)SeedMixer.Derive(seed, 1));
        int n = 2;
        var solvedAt = new List<int>();
        for (int step = 1; step <= c.Steps && n <= c.MaxN; step++)
        {
            using (var scope = NewDisposeScope())
            using (GcQuiet.Enter())
            {
                var heads = Heads(curriculum, n);
                var (bits, labels) = Batch(c.Task, c.Batch, n, heads, gen);
                var state = net.forward(bits);
                var loss = heads.Select((k, i) => nn.functional.cross_entropy(net.Head(k, state), labels[i])).Aggregate((a, b) => a + b);
                sgd.zero_grad();
                loss.backward();
                nn.utils.clip_grad_norm_(net.parameters(), c.GradClip);
                sgd.step();
                net.Rnn.ClampTimescales();
            }
            if (step % c.EpochSteps != 0) continue;
            var accuracy = Accuracy(net, c, Heads(curriculum, n), n, SeedMixer.Derive(seed, 2, n));
            if (accuracy.Average() > c.Threshold && accuracy[^1] > c.Threshold)
            {
                solvedAt.Add(step);
                log?.Invoke($"{Names.Of(curriculum)} seed {seed}: N = {n} solved at step {step} ({clock.Elapsed.TotalSeconds:F0} s)");
                n++;
            }
        }
        int largest = solvedAt.Count + 1;                                               // N starts at 2
        var final = largest < 2 ? [] : Accuracy(net, c, [.. Enumerable.Range(2, largest - 1)], largest, SeedMixer.Derive(seed, 3));
        int probe = c.RobustnessN == 0 ? largest : c.RobustnessN;
        var perturbations = largest < 2 || probe > largest ? [] : Perturb(net, c, probe, seed);
        var tau = net.Rnn.Timescales.detach().data<float>().ToArray();
        return new TimescalesRun(Names.Of(curriculum), Names.Of(c.Task), seed, largest < 2 ? 0 : largest, [.. solvedAt], tau, final,
            perturbations, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Test accuracy of each head in <paramref name="ns"/> on fresh streams sized for <paramref name="n"/>.</summary>
    static double[] Accuracy(Network net, TimescalesConfig c, int[] ns, int n, long seed)
    {
        using var noGrad = no_grad();
        using var gen = new Generator((ulong)seed);
        var correct = new double[ns.Length];
        for (int t = 0; t < c.TestBatches; t++)
        {
            using var scope = NewDisposeScope();
            var (bits, labels) = Batch(c.Task, c.Batch, n, ns, gen);
            var state = net.forward(bits);
            for (int i = 0; i < ns.Length; i++)
                correct[i] += net.Head(ns[i], state).argmax(-1).eq(labels[i]).sum().item<long>();
        }
        return [.. correct.Select(x => x / (c.TestBatches * c.Batch))];
    }

    /// <summary>Accuracy of head N unperturbed, with a fraction of neurons silenced, or with noise of a given σ on the state.</summary>
    static Perturbation[] Perturb(Network net, TimescalesConfig c, int n, int seed)
    {
        var results = new List<Perturbation> { new("none", 0, n, Accuracy(net, c, [n], n, SeedMixer.Derive(seed, 3))[0]) };
        using var gen = new Generator((ulong)SeedMixer.Derive(seed, 4));
        foreach (double fraction in new[] { 0.05, 0.1, 0.2 })
        {
            net.Rnn.Ablation = randperm(c.Units, generator: gen).lt((long)Math.Round(fraction * c.Units));
            results.Add(new Perturbation("ablate", fraction, n, Accuracy(net, c, [n], n, SeedMixer.Derive(seed, 3))[0]));
            net.Rnn.Ablation = null;
        }
        net.Rnn.NoiseGenerator = gen;
        foreach (double sigma in new[] { 0.05, 0.1, 0.2 })
        {
            net.Rnn.Noise = sigma;
            results.Add(new Perturbation("noise", sigma, n, Accuracy(net, c, [n], n, SeedMixer.Derive(seed, 3))[0]));
        }
        net.Rnn.Noise = 0;
        net.Rnn.NoiseGenerator = null;
        return [.. results];
    }
}
