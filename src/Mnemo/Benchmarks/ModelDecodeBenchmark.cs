using System.Diagnostics;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>One (model, context) measurement of streaming decode through a whole language model.</summary>
/// <param name="CacheBytes">what the model carries between tokens: memory states + conv tails, or the KV cache</param>
/// <param name="Fill">how the context got into the cache: "prefill" (really streamed) or "synthetic" (random keys/values)</param>
sealed record ModelDecodeRow(string Model, long Context, int Tokens, double MsPerToken, double BestMsPerToken,
    long CacheBytes, long WorkingSetBytes, string Fill, double? PrefillTokensPerSecond);

/// <summary>
/// Model-level decode: per-token latency of <see cref="LanguageModel.Step"/> after a context of N tokens, for a
/// streaming Gated DeltaNet model and an attention model with a KV cache of the same width and depth. The Gated
/// DeltaNet context is really prefilled (chunk form, in pieces), which also measures prefill throughput; the
/// attention cache is filled with random keys and values of the right shape, because prefilling a million tokens
/// through attention costs O(N²) and the decode step's cost depends only on the cache's size.
/// </summary>
static class ModelDecodeBenchmark
{
    public static ModelConfig Config(MixerKind mixer, int dModel, int layers, int heads) =>
        new() { Mixer = mixer, VocabSize = 512, DModel = dModel, NumLayers = layers, NumHeads = heads, MlpRatio = 4 };

    public static List<ModelDecodeRow> Run(long[] contexts, int tokens, int dModel, int layers, int heads, Action<string> log)
    {
        var rows = new List<ModelDecodeRow>();
        using var noGrad = no_grad();
        foreach (var mixer in new[] { MixerKind.GatedDeltaNet, MixerKind.Attention })
        {
            TorchRuntime.Seed(1);
            using var model = new LanguageModel(Config(mixer, dModel, layers, heads));
            model.eval();
            foreach (long context in contexts.Order())
            {
                log($"{mixer} model, context {context:N0} …");
                using var cache = model.NewCache();
                double? prefill = mixer == MixerKind.Attention ? null : Prefill(model, cache, context);
                if (mixer == MixerKind.Attention) FillKv(model, cache, context, tokens + 2);
                var gen = new Generator((ulong)context);
                var samples = new double[tokens];
                for (int i = 0; i < tokens + 2; i++)
                {
                    using var scope = NewDisposeScope();
                    var token = randint(0, 512, [1, 1], generator: gen);
                    using var quiet = GcQuiet.Enter();                                 // opened (and its collection run) untimed
                    long start = Stopwatch.GetTimestamp();
                    model.Step(token, cache);
                    if (i >= 2) samples[i - 2] = Stopwatch.GetElapsedTime(start).TotalMilliseconds; // 2 warm-up tokens
                }
                Array.Sort(samples);
                using var process = Process.GetCurrentProcess();
                rows.Add(new ModelDecodeRow(Json(mixer), context, tokens, samples[tokens / 2], samples[0], cache.Bytes,
                    process.WorkingSet64, mixer == MixerKind.Attention ? "synthetic" : "prefill", prefill));
            }
        }
        return rows;
    }

    /// <summary>Streams <paramref name="context"/> random tokens through the model in pieces; returns tokens/s.</summary>
    static double Prefill(LanguageModel model, ModelCache cache, long context)
    {
        var gen = new Generator(7);
        var clock = Stopwatch.StartNew();
        for (long done = 0; done < context; done += 4096)
        {
            using var scope = NewDisposeScope();
            using var quiet = GcQuiet.Enter();                                   // see GcQuiet: no GC mid-call
            model.Step(randint(0, 512, [1, Math.Min(4096, context - done)], generator: gen), cache);
        }
        return context / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Puts a context of random keys and values into every attention layer's KV buffer.</summary>
    static void FillKv(LanguageModel model, ModelCache cache, long context, int room)
    {
        var c = model.Config;
        var gen = new Generator(11);
        foreach (var layer in cache.Layers)
        {
            using var scope = NewDisposeScope();
            var k = randn([1, c.NumHeads, context, c.HeadDim], generator: gen);
            var v = randn([1, c.NumHeads, context, c.HeadDim], generator: gen);
            KvBuffer.Fill(layer, k, v, context + room);
        }
        cache.Position = context;
    }

    static string Json(MixerKind m) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(m.ToString());
}
