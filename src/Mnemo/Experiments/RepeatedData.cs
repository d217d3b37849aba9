using System.Diagnostics;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tasks.LanguageModeling;
using Mnemo.Text;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>The repeated-data study's corpus, model, fixed budget and grid (docs/repeated-data.md).</summary>
public sealed record RepeatedDataConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    [Help("corpus name or file (scripts/setup-corpora.sh), read as bytes; its last tenth is held out")]
    public string Corpus { get; init; } = "austen";
    [Help("tokens per training window"), Range(2, 1 << 20)] public int SeqLen { get; init; } = 256;
    public ModelConfig Model { get; init; } = new()
    {
        DModel = 128, NumLayers = 2, NumHeads = 4, Mixer = MixerKind.Attention, MlpRatio = 4, MaxPositions = 1024,
    };
    [Help("the fixed budget: training.steps × training.batch_size windows for every run")]
    public TrainingConfig Training { get; init; } = new()
    {
        Steps = 400, BatchSize = 32, Lr = 2e-3, WarmupSteps = 40, WeightDecay = 0.1, LogEvery = 100,
    };
    [Help("shares of the training windows drawn from the repeated subset")]
    public double[] Fractions { get; init; } = [0.1];
    [Help("times each window of the repeated subset is seen (1 = no repetition: the baseline)")]
    public int[] Repeats { get; init; } = [1, 4, 16, 64, 256, 1280];
    [Help("held-out windows of seq_len scored for the held-out loss"), Range(1, 1_000_000)] public int EvalWindows { get; init; } = 256;
    [Help("tokens of a copy probe's span; each probe row is a span followed by itself"), Range(2, 1 << 16)]
    public int ProbeSpan { get; init; } = 64;
    [Help("rows of each copy probe"), Range(1, 100_000)] public int ProbeRows { get; init; } = 64;

    public IEnumerable<(string, string)> Validate()
    {
        if (Fractions.Length == 0 || Fractions.Any(f => f is < 0 or >= 1))
            yield return ("fractions", "give at least one share in [0, 1)");
        if (Repeats.Length == 0 || Repeats.Any(r => r < 1)) yield return ("repeats", "give at least one count, each ≥ 1");
        if (Corpora.Problem(Corpus, strict: false) is { } problem) yield return ("corpus", problem);
    }

    /// <summary>A config file over the defaults above, then "field=value" overrides (see <see cref="ConfigBinder.LoadOver"/>).</summary>
    public static RepeatedDataConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new RepeatedDataConfig(), file, overrides ?? [], "the default repeated-data config");

    public string ToJson() => ConfigBinder.ToJson(this);
}

/// <summary>One run of the grid. Losses are bits per byte.</summary>
/// <param name="Fraction">share of training windows from the repeated subset</param>
/// <param name="Repeats">times each repeated window is seen (its share and the subset size set it; a mean when they do not divide)</param>
/// <param name="SubsetWindows">distinct windows in the repeated subset</param>
/// <param name="HeldOut">on the held-out tenth</param>
/// <param name="Subset">on the repeated subset (how well it was memorised)</param>
/// <param name="CopyText">on the second copy of a held-out span, its first token left out</param>
/// <param name="CopyRandom">on the second copy of a span of random characters</param>
public sealed record RepeatedDataRun(int Seed, double Fraction, double Repeats, int SubsetWindows, double HeldOut, double? Subset,
    double CopyText, double FirstText, double CopyRandom, double FirstRandom, double Seconds);

/// <summary>
/// Hernandez et al. 2022, "Scaling Laws and Interpretability of Learning from Repeated Data" (docs/repeated-data.md), at
/// CPU scale: every run sees the same number of training windows; a share f of them comes from a small subset, each of
/// whose windows is seen r times, and the rest are windows seen once. Measured: held-out loss, the subset's own loss,
/// and copying (loss on the second copy of a repeated span of held-out text, and of random characters).
/// </summary>
public static class RepeatedData
{
    public static List<RepeatedDataRun> Run(RepeatedDataConfig c, IReadOnlyList<int> seeds, Action<string>? log = null)
    {
        var corpus = Corpora.Load(c.Corpus);
        if (corpus.Note is { } note) log?.Invoke($"note: {note}");
        var split = LanguageModeling.Split(corpus.Name, corpus.Text, 0.1, ByteTokenizer.Instance);
        var runs = new List<RepeatedDataRun>();
        var grid = c.Fractions.SelectMany(f => c.Repeats.Where(r => r > 1 && f > 0).Select(r => (f, r)))
            .Prepend((0.0, 1)).ToArray();                                               // the baseline once: nothing repeated
        foreach (int seed in seeds)
            foreach (var (f, r) in grid)
            {
                var run = One(c, split, f, r, seed, log);
                string subset = run.Subset?.ToString("F3") ?? "none";
                log?.Invoke($"f {f:G3} × r {run.Repeats:G4} seed {seed}: held-out {run.HeldOut:F4} bits/byte, subset {subset}, " +
                    $"copy {run.CopyText:F3} (first copy {run.FirstText:F3}); {run.Seconds:F0} s");
                runs.Add(run);
            }
        return runs;
    }

    static RepeatedDataRun One(RepeatedDataConfig c, SplitText split, double fraction, int repeats, int seed, Action<string>? log)
    {
        var clock = Stopwatch.StartNew();
        var t = c.Training with { Seed = seed };
        int windows = t.Steps * t.BatchSize, length = c.SeqLen + 1;
        var (slots, subset) = Schedule(split.Train.Length / length, windows, fraction, repeats, SeedMixer.Derive(seed, 1));
        TorchRuntime.Seed(SeedMixer.Derive(seed, 2));
        using var model = new LanguageModel(c.Model with { VocabSize = ByteTokenizer.Instance.VocabSize });
        string name = $"f {fraction:G3} × r {repeats} seed {seed}";
        FitLoop.Run(model, t, name, step =>
        {
            var rows = Windows(split.Train, slots.AsSpan(step * t.BatchSize, t.BatchSize), length);   // [B, L + 1]
            return Loss(model, rows).mean();
        }, (step, loss) => log?.Invoke($"{name}: step {step}/{t.Steps}, loss {loss:F3}"));
        using var noGrad = no_grad();
        int evalWindows = Math.Min(c.EvalWindows, split.HeldOut.Length / length);
        double heldOut = Bits(model, split.HeldOut, [.. Enumerable.Range(0, evalWindows)], length);
        double? memorised = subset.Length == 0 ? null : Bits(model, split.Train, subset[..Math.Min(subset.Length, 256)], length);
        var (copyText, firstText) = CopyProbe(model, c, ProbeSpans(split.HeldOut, c, SeedMixer.Derive(seed, 3)));
        var (copyRandom, firstRandom) = CopyProbe(model, c, RandomSpans(split.Train, c, SeedMixer.Derive(seed, 4)));
        double actualRepeats = subset.Length == 0 ? 1 : Math.Round(fraction * windows) / subset.Length;
        return new RepeatedDataRun(seed, fraction, actualRepeats, subset.Length, heldOut, memorised, copyText, firstText, copyRandom,
            firstRandom, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Which training tile each of the <paramref name="windows"/> slots reads. The training text is cut into non-overlapping
    /// tiles, shuffled; the first n = round(f·W / r) tiles are the repeated subset, filling round(f·W) slots in turn, and
    /// the next W − round(f·W) tiles fill the rest once each; then the slots are shuffled. Returns the slots and the subset.
    /// </summary>
    public static (int[] Slots, int[] Subset) Schedule(int tiles, int windows, double fraction, int repeats, int seed)
    {
        var rng = new Random(seed);
        int repeated = (int)Math.Round(fraction * windows);
        int n = repeated == 0 ? 0 : Math.Max(1, (int)Math.Round((double)repeated / repeats));
        if (n + windows - repeated > tiles)
            throw new MnemoException($"corpus: the training text has {tiles:N0} windows; a run needs {n + windows - repeated:N0} " +
                "distinct ones (lower training.steps or training.batch_size, or use a longer corpus)");
        var order = Enumerable.Range(0, tiles).OrderBy(_ => rng.Next()).ToArray();
        int[] subset = order[..n];
        var slots = Enumerable.Range(0, repeated).Select(i => subset[i % n]).Concat(order[n..(n + windows - repeated)])
            .OrderBy(_ => rng.Next()).ToArray();
        return (slots, subset);
    }

    /// <summary>Tiles <paramref name="which"/> of <paramref name="tokens"/> (each <paramref name="length"/> long): [N, length].</summary>
    static Tensor Windows(int[] tokens, ReadOnlySpan<int> which, int length)
    {
        var values = new long[which.Length * length];
        for (int i = 0; i < which.Length; i++)
            for (int j = 0; j < length; j++) values[i * length + j] = tokens[which[i] * length + j];
        return tensor(values).view(which.Length, length);
    }

    /// <summary>Next-token cross-entropy (nats) at every position of each row: [N, L].</summary>
    static Tensor Loss(LanguageModel model, Tensor rows)
    {
        var inputs = rows.narrow(1, 0, rows.shape[1] - 1);
        var labels = rows.narrow(1, 1, rows.shape[1] - 1);
        var logits = model.forward(inputs);                                                    // [N, L, V]
        return nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction: nn.Reduction.None)
            .view(labels.shape);
    }

    /// <summary>Mean bits per token over tiles <paramref name="which"/>.</summary>
    static double Bits(LanguageModel model, int[] tokens, int[] which, int length)
    {
        double sum = 0;
        long count = 0;
        for (int start = 0; start < which.Length; start += 32)
        {
            using var scope = NewDisposeScope();
            var loss = Loss(model, Windows(tokens, which.AsSpan(start, Math.Min(32, which.Length - start)), length));
            sum += loss.sum().ToDouble();
            count += loss.numel();
        }
        return sum / count / Math.Log(2);
    }

    /// <summary>Bits per token on the second copy of each span (its first token, which nothing predicts, left out) and on
    /// the first copy (the same positions), over rows span ‖ span.</summary>
    static (double Second, double First) CopyProbe(LanguageModel model, RepeatedDataConfig c, int[][] spans)
    {
        int m = c.ProbeSpan;
        using var scope = NewDisposeScope();
        var rows = tensor(spans.SelectMany(s => s.Concat(s)).Select(x => (long)x).ToArray()).view(spans.Length, 2 * m);
        var loss = Loss(model, rows);                                          // [N, 2m − 1]: predicts tokens 1 … 2m − 1
        double first = loss.narrow(1, 0, m - 1).mean().ToDouble();                             // tokens 1 … m − 1
        double second = loss.narrow(1, m, m - 1).mean().ToDouble();                           // tokens m + 1 … 2m − 1
        return (second / Math.Log(2), first / Math.Log(2));
    }

    /// <summary>Probe spans of held-out text at seeded starts.</summary>
    static int[][] ProbeSpans(int[] heldOut, RepeatedDataConfig c, int seed)
    {
        if (heldOut.Length < c.ProbeSpan + 1)
            throw new MnemoException($"probe_span: {c.ProbeSpan} tokens do not fit in the held-out text ({heldOut.Length:N0})");
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, c.ProbeRows)
            .Select(_ => heldOut.AsSpan(rng.Next(heldOut.Length - c.ProbeSpan), c.ProbeSpan).ToArray())];
    }

    /// <summary>Probe spans of characters drawn uniformly from the training text's alphabet: nothing to predict but the copy.</summary>
    static int[][] RandomSpans(int[] train, RepeatedDataConfig c, int seed)
    {
        int[] alphabet = [.. train.Distinct().Order()];
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, c.ProbeRows)
            .Select(_ => Enumerable.Range(0, c.ProbeSpan).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray())];
    }
}
