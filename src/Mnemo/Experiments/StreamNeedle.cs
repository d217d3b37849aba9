using System.Diagnostics;
using Mnemo.Memory.Episodic;
using Mnemo.Models;
using Mnemo.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>The needle-in-a-stream task and its training budget (docs/mechanisms.md#scenetilling-and-the-memory-bridge).</summary>
public sealed record StreamNeedleConfig
{
    public int FrameDim { get; init; } = 16;
    public int MinScene { get; init; } = 8;
    public int MaxScene { get; init; } = 24;
    public double Noise { get; init; } = 0.3;
    public int Needles { get; init; } = 4;
    public int TrainFrames { get; init; } = 96;
    public int[] TestFrames { get; init; } = [96, 384, 1536];
    public int TestExamples { get; init; } = 200;
    public int Steps { get; init; } = 600;
    public int Batch { get; init; } = 8;
    public double Lr { get; init; } = 1e-3;
    public int DModel { get; init; } = 32;
    public int Heads { get; init; } = 2;
    public int MemoryTokens { get; init; } = 2;
    public int FixedSegment { get; init; } = 16;
}

/// <summary>One model's exact accuracy at one test length.</summary>
public sealed record StreamNeedleScore(string Model, int Seed, int Frames, double Accuracy, double SegmentsPerExample, double TrainSeconds);

/// <summary>
/// A needle-in-a-video-haystack analogue over vector streams: scenes of noisy frames around random directions (in every
/// axis but the first K), one frame replaced by one of K needle vectors (4 along one of those K axes), and the model names
/// which needle it saw once the stream ends.
/// Models: the memory bridge over SceneTilling's scenes (with and without retrieval), the bridge over fixed segments,
/// and full attention over every frame (the same encoder layer, one pass).
/// </summary>
public static class StreamNeedle
{
    public static readonly string[] Models = ["bridge", "bridge-no-retrieval", "bridge-fixed", "attention"];

    /// <summary>One stream [frames][F], its needle's class and position.</summary>
    public sealed record Example(float[][] Frames, int Needle, int At);

    /// <summary>The K needle vectors: needle k is 4 along axis k, an axis no scene uses, so a needle is easy to recognise
    /// when seen and the task measures only whether it is remembered.</summary>
    public static float[][] NeedleVectors(StreamNeedleConfig c) =>
        Enumerable.Range(0, c.Needles).Select(k => Enumerable.Range(0, c.FrameDim).Select(d => d == k ? 4f : 0f).ToArray()).ToArray();

    public static Example Draw(Random random, float[][] needles, int frames, StreamNeedleConfig c)
    {
        var stream = new List<float[]>(frames);
        while (stream.Count < frames)
        {
            var centre = Gaussian(random, c.FrameDim);
            Array.Clear(centre, 0, c.Needles);                                          // the needles' axes stay free
            int length = random.Next(c.MinScene, c.MaxScene + 1);
            for (int f = 0; f < length && stream.Count < frames; f++) stream.Add(Noisy(random, centre, c.Noise));
        }
        int needle = random.Next(needles.Length), at = random.Next(frames);
        stream[at] = Noisy(random, needles[needle], c.Noise);
        return new Example([.. stream], needle, at);
    }

    /// <summary>n standard normal values (Box–Muller).</summary>
    static float[] Gaussian(Random random, int n) =>
        Enumerable.Range(0, n)
            .Select(_ => (float)random.NextGaussian())
            .ToArray();

    static float[] Noisy(Random random, float[] centre, double noise)
    {
        var n = Gaussian(random, centre.Length);
        return centre.Select((v, i) => (float)(v + noise * n[i])).ToArray();
    }

    /// <summary>The classifier: in_proj (F → D), then the bridge or full attention, then head (D → K).</summary>
    public sealed class Classifier : nn.Module
    {
        readonly Linear in_proj, head;
        readonly MemoryBridge? bridge;
        readonly TransformerEncoderLayer? encoder;
        readonly Parameter? cls;
        readonly string _model;
        readonly int _fixed;

        public Classifier(string model, StreamNeedleConfig c) : base(nameof(Classifier))
        {
            if (!Models.Contains(model)) throw new ArgumentException($"unknown model \"{model}\"; allowed: {string.Join(", ", Models)}");
            _model = model;
            _fixed = c.FixedSegment;
            in_proj = nn.Linear(c.FrameDim, c.DModel);
            head = nn.Linear(c.DModel, c.Needles);
            if (model == "attention")
            {
                encoder = nn.TransformerEncoderLayer(c.DModel, c.Heads, 4 * c.DModel, dropout: 0);
                cls = nn.Parameter(randn(1, c.DModel) * 0.02);
            }
            else bridge = new MemoryBridge(c.DModel, c.Heads, 1, c.MemoryTokens, retrieval: model != "bridge-no-retrieval");
            RegisterComponents();
        }

        /// <summary>Logits [K] of one stream [T, F]; <paramref name="segments"/>: how many segments the bridge read.</summary>
        public Tensor Forward(Example example, out int segments)
        {
            using var scope = NewDisposeScope();
            var frames = tensor(example.Frames.SelectMany(f => f).ToArray(), [1, example.Frames.Length, example.Frames[0].Length]);
            var x = in_proj.forward(frames);                                                // [1, T, D]
            Tensor summary;
            if (encoder is not null)
            {
                segments = 1;
                var h = encoder.forward(cat([cls!.unsqueeze(0), x], 1).transpose(0, 1));      // [1 + T, 1, D]
                summary = h[0, 0];
            }
            else
            {
                var starts = _model == "bridge-fixed"
                    ? Enumerable.Range(1, (example.Frames.Length - 1) / _fixed).Select(i => i * _fixed).ToArray()
                    : SceneTilling.Boundaries(example.Frames, maxScenes: int.MaxValue);
                var state = bridge!.Read(x, starts);
                segments = (int)state.Segments;
                summary = state.Memory!.mean([1]).squeeze(0);                                 // [D]
            }
            return head.forward(summary).MoveToOuterDisposeScope();
        }
    }

    /// <summary>Trains one model on one seed and scores it at every test length.</summary>
    public static List<StreamNeedleScore> Run(string model, int seed, StreamNeedleConfig c, Action<string>? log = null)
    {
        TorchRuntime.Seed(seed);
        var needles = NeedleVectors(c);
        var classifier = new Classifier(model, c);
        var optimizer = optim.AdamW(classifier.parameters(), c.Lr);
        var train = new Random(1000 + seed);
        var clock = Stopwatch.StartNew();
        for (int step = 1; step <= c.Steps; step++)
        {
            using var scope = NewDisposeScope();
            using var quiet = GcQuiet.Enter();
            optimizer.zero_grad();
            var batch = Enumerable.Range(0, c.Batch).Select(_ => Draw(train, needles, c.TrainFrames, c)).ToArray();
            var logits = stack(batch.Select(e => classifier.Forward(e, out _)).ToArray());       // [B, K]
            var loss = nn.functional.cross_entropy(logits, tensor(batch.Select(e => (long)e.Needle).ToArray()));
            loss.backward();
            optimizer.step();
            if (step % 100 == 0) log?.Invoke($"{model} seed {seed}: step {step} loss {loss.item<float>():F3}");
        }
        double seconds = clock.Elapsed.TotalSeconds;
        classifier.eval();
        var scores = new List<StreamNeedleScore>();
        using var noGrad = no_grad();
        foreach (int frames in c.TestFrames)
        {
            var test = new Random(2000 + frames);                                            // the same streams for every model and seed
            int right = 0;
            long segments = 0;
            for (int i = 0; i < c.TestExamples; i++)
            {
                GcQuiet.Renew();
                using var scope = NewDisposeScope();
                using var quiet = GcQuiet.Enter();
                var example = Draw(test, needles, frames, c);
                var logits = classifier.Forward(example, out int read);
                segments += read;
                if (logits.argmax().item<long>() == example.Needle) right++;
            }
            var score = new StreamNeedleScore(model, seed, frames, (double)right / c.TestExamples, (double)segments / c.TestExamples,
                seconds);
            scores.Add(score);
            log?.Invoke($"{model} seed {seed} at {frames} frames: {score.Accuracy:P1} ({score.SegmentsPerExample:F1} segments)");
        }
        return scores;
    }
}
