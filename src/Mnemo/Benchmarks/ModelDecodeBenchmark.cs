using System.Diagnostics;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Benchmarks;

/// <summary>One (model, context) measurement of streaming decode through a whole language model.</summary>
/// <param name="CacheBytes">what the model carries between tokens: memory states + conv tails, or the KV cache</param>
/// <param name="Fill">how the context got into the cache: "prefill" (really streamed) or "synthetic" (random keys/values)</param>
/// <param name="HeapReleases">how often the prefill handed freed native memory back to the OS (<see cref="LanguageModel.Prefill"/>)</param>
sealed record ModelDecodeRow(string Model, long Context, int Tokens, double MsPerToken, double BestMsPerToken,
    long CacheBytes, long WorkingSetBytes, string Fill, double? PrefillTokensPerSecond, int? HeapReleases);

/// <summary>
/// Model-level decode: per-token latency of <see cref="LanguageModel.Step"/> after a context of N tokens, for streaming
/// recurrent models (Gated DeltaNet, Mamba-2 by default) and an attention model with a KV cache of the same width and
/// depth. A recurrent model's context is really prefilled (<see cref="LanguageModel.Prefill"/>: chunk form, in pieces),
/// which also measures prefill throughput; the attention cache is filled with random keys and values of the right
/// shape, because prefilling a million tokens through attention costs O(N²) and the decode step's cost depends only on
/// the cache's size. The process's resident memory is read after each context's decode.
/// </summary>
static class ModelDecodeBenchmark
{
    /// <summary>A model of one mixer at the given width and depth; Liger attention gets its paper's window of 64.</summary>
    public static ModelConfig Config(MixerKind mixer, int dModel, int layers, int heads) =>
        new()
        {
            Mixer = mixer, VocabSize = 512, DModel = dModel, NumLayers = layers, NumHeads = heads, MlpRatio = 4,
            Attention = new AttentionConfig { Window = mixer == MixerKind.LigerAttention ? 64 : 0 },
        };

    /// <summary>The models measured when none are named.</summary>
    public static readonly MixerKind[] DefaultMixers = [MixerKind.GatedDeltaNet, MixerKind.Mamba2, MixerKind.Attention];

    /// <param name="landmark">when set, an attention model with these landmark settings is measured after the others
    /// ("attention_landmark": its cache holds the context's landmarks too; each token reads top-k blocks)</param>
    public static List<ModelDecodeRow> Run(long[] contexts, int tokens, int dModel, int layers, int heads, Action<string> log,
        MixerKind[]? mixers = null, AttentionConfig? landmark = null)
    {
        var rows = new List<ModelDecodeRow>();
        using var noGrad = no_grad();
        var models = (mixers ?? DefaultMixers).Select(m => (Name: Names.Of(m), Config: Config(m, dModel, layers, heads))).ToList();
        if (landmark is not null)
            models.Add(("attention_landmark", Config(MixerKind.Attention, dModel, layers, heads) with { Attention = landmark }));
        foreach (var (name, config) in models)
        {
            TorchRuntime.Seed(1);
            using var model = new LanguageModel(config);
            model.eval();
            bool attention = config.Mixer == MixerKind.Attention;
            foreach (long context in contexts.Order())
            {
                log($"{name} model, context {context:N0} …");
                using var cache = model.NewCache();
                var (prefill, releases) = attention ? ((double?)null, (int?)null) : Prefill(model, cache, context);
                if (attention) FillKv(model, cache, context, tokens + 2);
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
                rows.Add(new ModelDecodeRow(name, context, tokens, samples[tokens / 2], samples[0], cache.Bytes,
                    process.WorkingSet64, attention ? "synthetic" : "prefill", prefill, releases));
            }
        }
        return rows;
    }

    /// <summary>Streams <paramref name="context"/> random tokens through the model in pieces; returns tokens/s and heap releases.</summary>
    static (double TokensPerSecond, int Releases) Prefill(LanguageModel model, ModelCache cache, long context)
    {
        using var tokens = randint(0, 512, [1, context], generator: new Generator(7));
        var clock = Stopwatch.StartNew();
        int releases = model.Prefill(tokens, cache);
        return (context / clock.Elapsed.TotalSeconds, releases);
    }

    /// <summary>Puts a context of random keys and values into every attention layer's KV buffer (with landmarks, one
    /// more position after every block of the context).</summary>
    static void FillKv(LanguageModel model, ModelCache cache, long context, int room)
    {
        var c = model.Config;
        var gen = new Generator(11);
        long positions = c.Attention.LandmarkBlock > 0 ? Landmarks.Extended(context, c.Attention.LandmarkBlock) : context;
        foreach (var layer in cache.Layers)
        {
            using var scope = NewDisposeScope();
            var k = randn([1, c.NumHeads, positions, c.HeadDim], generator: gen);
            var v = randn([1, c.NumHeads, positions, c.HeadDim], generator: gen);
            KvBuffer.Fill(layer, k, v, positions + 2 * room);
        }
        cache.Position = context;
    }
}
