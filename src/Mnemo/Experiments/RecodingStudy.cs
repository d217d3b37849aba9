using System.Diagnostics;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tasks.LanguageModeling;
using Mnemo.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>The model, its training and the evaluation grid of <see cref="RecodingStudy"/> (docs/recoding.md#measurements).</summary>
public sealed record RecodingStudyConfig
{
    /// <summary>A corpus name or file (<see cref="Corpora"/>), read as bytes.</summary>
    public string Corpus { get; init; } = "austen";
    public int Hidden { get; init; } = 256;
    public int Layers { get; init; } = 2;
    public int SeqLen { get; init; } = 128;
    public int Batch { get; init; } = 32;
    public int Steps { get; init; } = 2000;
    public double Lr { get; init; } = 2e-3;
    public double GradClip { get; init; } = 1;
    /// <summary>Held-out streams read side by side, and the bytes each.</summary>
    public int Streams { get; init; } = 16;
    public int EvalLength { get; init; } = 256;
    /// <summary>Probabilities that an input byte is replaced by a random character of the corpus.</summary>
    public double[] Noise { get; init; } = [0, 0.05, 0.1, 0.2];
    public double[] StepSizes { get; init; } = [0.03, 0.1, 0.3, 1];
    public int RecodeSteps { get; init; } = 1;
    public RecodingSignal[] Signals { get; init; } = [RecodingSignal.Surprisal, RecodingSignal.Entropy];

    public void Validate()
    {
        foreach (var (name, value) in new[] { ("hidden", Hidden), ("layers", Layers), ("seq len", SeqLen), ("batch", Batch),
            ("steps", Steps), ("streams", Streams), ("eval length", EvalLength), ("recode steps", RecodeSteps) })
            if (value < 1) throw new MnemoException($"{name} must be at least 1, got {value}");
        if (!(Lr > 0) || !double.IsFinite(Lr)) throw new MnemoException($"lr must be a positive number, got {Lr}");
        if (Noise.Any(p => p is < 0 or >= 1)) throw new MnemoException("noise: probabilities must be in [0, 1)");
        if (StepSizes.Length == 0 || StepSizes.Any(a => !(a > 0) || !double.IsFinite(a)))
            throw new MnemoException("step sizes must be positive");
        if (Corpora.Problem(Corpus, strict: false) is { } problem) throw new MnemoException($"corpus: {problem}");
    }
}

/// <summary>Held-out bits per byte of the clean next byte at one noise level, plain or recoded, and the mean signal per
/// token before and after the corrections.</summary>
public sealed record RecodingPoint(double Noise, string Signal, double StepSize, double BitsPerByte, double SignalBefore,
    double SignalAfter);

public sealed record RecodingRun(int Seed, string Corpus, double TrainBitsPerByte, RecodingPoint[] Points, double Seconds);

/// <summary>
/// Recoding on noisy input (docs/recoding.md#measurements): a byte-level <see cref="RecodingLstm"/> is trained on clean text,
/// then reads held-out text whose input bytes are replaced by random characters with probability p, and is scored on
/// the clean next byte, plain and with its state recoded by each signal and step size. Surprisal measures the byte that
/// arrives next, which is the noisy one: the model can only correct towards what it sees.
/// </summary>
public static class RecodingStudy
{
    public static RecodingRun Run(RecodingStudyConfig c, int seed, Action<string>? log = null)
    {
        c.Validate();
        var clock = Stopwatch.StartNew();
        var corpus = Corpora.Load(c.Corpus);
        var split = LanguageModeling.Split(corpus.Name, corpus.Text, 0.1, ByteTokenizer.Instance);
        if (split.HeldOut.Length < c.Streams * (c.EvalLength + 1))
            throw new MnemoException($"corpus: the held-out tenth of {corpus.Name} has {split.HeldOut.Length:N0} bytes; " +
                $"{c.Streams} streams of {c.EvalLength} need {c.Streams * (c.EvalLength + 1):N0}");
        TorchRuntime.Seed(seed);
        var model = new RecodingLstm(256, c.Hidden, c.Layers);
        double trainBpb = Train(model, split.Train, c, seed, log);
        model.eval();
        int[] alphabet = [.. split.Train.Distinct().Order()];
        var clean = tensor(split.HeldOut.Take(c.Streams * (c.EvalLength + 1)).Select(x => (long)x).ToArray())
            .view(c.Streams, c.EvalLength + 1);                                         // [streams, L + 1]
        var points = new List<RecodingPoint>();
        foreach (double p in c.Noise)
        {
            var noisy = Corrupt(clean, p, alphabet, SeedMixer.Derive(seed, 7, (long)(p * 1e6)));
            var (inputs, observed) = (noisy.narrow(1, 0, c.EvalLength), noisy.narrow(1, 1, c.EvalLength));
            var targets = clean.narrow(1, 1, c.EvalLength);
            RecodingPoint Point(RecodingConfig rc, string signal)
            {
                using var scope = NewDisposeScope();
                var pass = model.Recode(inputs, observed, rc);
                double ce = nn.functional.cross_entropy(pass.Logits.flatten(0, 1), targets.flatten()).item<float>();
                return new RecodingPoint(p, signal, rc.Steps == 0 ? 0 : rc.StepSize, ce / Math.Log(2), pass.SignalBefore, pass.SignalAfter);
            }
            points.Add(Point(new RecodingConfig { Steps = 0 }, "none"));
            foreach (var signal in c.Signals)
                foreach (double alpha in c.StepSizes)
                    points.Add(Point(new RecodingConfig { Signal = signal, Steps = c.RecodeSteps, StepSize = alpha }, Names.Of(signal)));
            log?.Invoke($"seed {seed}: noise {p:F2} evaluated ({clock.Elapsed.TotalSeconds:F0} s)");
        }
        return new RecodingRun(seed, corpus.Name, trainBpb, [.. points], clock.Elapsed.TotalSeconds);
    }

    /// <summary>Each byte replaced, with probability <paramref name="p"/>, by a character drawn uniformly from
    /// <paramref name="alphabet"/>. tokens [S, L] → [S, L].</summary>
    public static Tensor Corrupt(Tensor tokens, double p, int[] alphabet, int seed)
    {
        if (p == 0) return tokens;
        using var scope = NewDisposeScope();
        var gen = new Generator((ulong)seed);
        var replace = rand(tokens.shape, generator: gen).lt(p);
        var random = tensor(alphabet.Select(x => (long)x).ToArray())[randint(alphabet.Length, tokens.shape, generator: gen)];
        return where(replace, random, tokens).MoveToOuterDisposeScope();
    }

    /// <summary>Adam on random clean windows; returns the training bits per byte over the last tenth of the steps.</summary>
    static double Train(RecodingLstm model, int[] tokens, RecodingStudyConfig c, int seed, Action<string>? log)
    {
        var adam = optim.Adam(model.parameters(), c.Lr);
        var rng = new Random(SeedMixer.Derive(seed, 1));
        int every = Math.Max(1, c.Steps / 10);
        double recent = 0, last = 0;
        for (int step = 1; step <= c.Steps; step++)
        {
            using (var scope = NewDisposeScope())
            using (GcQuiet.Enter())
            {
                var window = new long[c.Batch * (c.SeqLen + 1)];
                for (int b = 0; b < c.Batch; b++)
                {
                    int start = rng.Next(tokens.Length - c.SeqLen - 1);
                    for (int t = 0; t <= c.SeqLen; t++) window[b * (c.SeqLen + 1) + t] = tokens[start + t];
                }
                var batch = tensor(window).view(c.Batch, c.SeqLen + 1);
                var logits = model.forward(batch.narrow(1, 0, c.SeqLen));
                var loss = nn.functional.cross_entropy(logits.flatten(0, 1), batch.narrow(1, 1, c.SeqLen).flatten());
                adam.zero_grad();
                loss.backward();
                nn.utils.clip_grad_norm_(model.parameters(), c.GradClip);
                adam.step();
                recent += loss.item<float>() / Math.Log(2);
            }
            if (step % every != 0) continue;
            last = recent / every;
            log?.Invoke($"seed {seed}: step {step}/{c.Steps}, {last:F3} bits per byte");
            recent = 0;
        }
        return last;
    }
}
