using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Layers;

namespace Mnemo.Interop;

/// <summary>
/// fla's Hugging Face config.json ↔ Mnemo's <see cref="ModelConfig"/> (docs/interop.md#configjson-field-by-field), for
/// the architectures Mnemo computes exactly as fla does: gated_deltanet and delta_net. Every key is either mapped, known
/// not to change the math, or refused; one error names every key that cannot be honoured.
/// </summary>
public static class FlaConfig
{
    public const string GatedDeltaNet = "gated_deltanet", DeltaNet = "delta_net";

    /// <summary>Keys that choose kernels, fusions, the loss or Hugging Face's bookkeeping: none changes the forward.</summary>
    static readonly HashSet<string> Inert =
    [
        "architectures", "model_type", "transformers_version", "torch_dtype", "dtype", "attn_mode", "fuse_norm",
        "fuse_swiglu", "fuse_cross_entropy", "fuse_linear_cross_entropy", "use_l2warp", "use_cache",
        "initializer_range", "bos_token_id", "eos_token_id", "pad_token_id", "max_position_embeddings", "hidden_ratio",
        "_name_or_path", "return_dict", "output_hidden_states", "output_attentions", "torchscript", "use_return_dict",
        "tie_encoder_decoder", "is_encoder_decoder",
    ];

    /// <summary>Reads an fla config; <paramref name="source"/> names the file in errors.</summary>
    public static ModelConfig FromHf(JsonObject config, string source)
    {
        string type = config["model_type"]?.GetValue<string>()
            ?? throw new MnemoException($"{source}: no \"model_type\" (an fla model's config.json has one)");
        bool gated = type switch
        {
            GatedDeltaNet => true,
            DeltaNet => false,
            _ => throw new MnemoException($"{source}: model_type \"{type}\" is not one Mnemo imports; it imports " +
                $"{GatedDeltaNet} and {DeltaNet} (docs/interop.md)"),
        };
        var problems = new List<string>();
        var used = new HashSet<string>(Inert);

        T Get<T>(string key, T fallback)
        {
            used.Add(key);
            var node = config[key];
            if (node is null) return fallback;
            try { return node.GetValue<T>(); }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                problems.Add($"\"{key}\" is {node.ToJsonString()}, expected a {typeof(T).Name.ToLowerInvariant()}");
                return fallback;
            }
        }
        void Require<T>(string key, T fallback, T wanted, string why)
        {
            var value = Get(key, fallback);
            if (!EqualityComparer<T>.Default.Equals(value, wanted)) problems.Add($"\"{key}\": {Json(value)} ({why})");
        }

        int d = Get("hidden_size", 2048), layers = Get("num_hidden_layers", gated ? 21 : 24), heads = Get("num_heads", gated ? 6 : 16);
        int vocab = Get("vocab_size", 32000), convSize = Get("conv_size", 4);
        double eps = Get("norm_eps", 1e-6);
        bool useGate = Get("use_gate", gated), tied = Get("tie_word_embeddings", false);
        int keyDim, valueDim;
        if (gated)
        {
            int headDim = Get("head_dim", 256);
            double expandV = Get("expand_v", 2.0);
            keyDim = heads * headDim;
            valueDim = heads * (int)(headDim * expandV);
            if (Get<int?>("num_v_heads", null) is { } v && v != heads)
                problems.Add($"\"num_v_heads\": {v} (grouped value heads; Mnemo's heads share one count, num_heads {heads})");
        }
        else
        {
            keyDim = (int)(d * Get("expand_k", 1.0));
            valueDim = (int)(d * Get("expand_v", 1.0));
            Require("use_beta", true, true, "Mnemo's DeltaNet always has β = σ(b_proj x)");
            Require("qk_norm", "l2", "l2", "Mnemo's DeltaNet L2-normalises q and k");
            Require("qk_activation", "silu", "silu", "Mnemo's short convolution ends in SiLU");
            used.Add("use_output_norm");                                      // fla ignores it: o_norm always runs
        }
        Require("use_short_conv", true, true, "without it fla applies SiLU to q, k, v directly; Mnemo does not");
        Require("allow_neg_eigval", false, false, "β in (0, 2) is not in Mnemo yet");
        Require("hidden_act", "swish", "swish", "Mnemo's MLP is SwiGLU");
        used.Add("attn");
        var attention = Hybrid(config["attn"], layers, heads, problems);
        if (config["attnres_block_size"] is { } res && res.GetValueKind() != System.Text.Json.JsonValueKind.Null)
            problems.Add($"\"attnres_block_size\": {res.ToJsonString()} (attention residuals are not in Mnemo)");
        used.Add("attnres_block_size");

        // fla's MLP width when intermediate_size is null: int(D · hidden_ratio · 2 / 3), rounded up to a multiple of 256.
        int intermediate = Get<int?>("intermediate_size", null)
            ?? 256 * (((int)(d * Get("hidden_ratio", 4.0) * 2 / 3) + 255) / 256);
        foreach (var key in config.Select(kv => kv.Key).Where(k => !used.Contains(k)))
            problems.Add($"\"{key}\" (not a key Mnemo knows for {type}; it may change the math)");
        if (heads <= 0 || keyDim % heads != 0 || valueDim % heads != 0)
            problems.Add($"key width {keyDim} and value width {valueDim} must split over num_heads {heads}");

        var mixer = gated ? MixerKind.GatedDeltaNet : MixerKind.DeltaNet;
        var model = new ModelConfig
        {
            Mixer = mixer,
            LayerMixers = attention is null
                ? []
                : [.. Enumerable.Range(0, layers).Select(l => attention.Value.Layers.Contains(l) ? MixerKind.Attention : mixer)],
            VocabSize = vocab, DModel = d, NumLayers = layers, NumHeads = heads,
            Positions = attention is null ? PositionKind.None : PositionKind.Rope,
            MaxPositions = Get("max_position_embeddings", 2048),
            ShortConv = true, ConvSize = convSize, ExpandK = (double)keyDim / d, ExpandV = (double)valueDim / d,
            OutputGate = useGate, MlpRatio = (double)intermediate / d, TieEmbeddings = tied, NormEps = eps,
            Attention = new AttentionConfig { Window = attention?.Window ?? 0, ShortConv = attention is null ? null : false },
        };
        if (problems.Count == 0)
        {
            if (model.KeyHeadDim * heads != keyDim || model.ValueHeadDim * heads != valueDim)
                problems.Add($"key width {keyDim} / value width {valueDim} do not map onto expand_k / expand_v exactly");
            if (model.MlpHidden != intermediate)
                problems.Add($"\"intermediate_size\": {intermediate} is not a multiple of 8, which Mnemo's MLP widths are");
            problems.AddRange(model.Validate().Select(p => $"{p.Item1}: {p.Item2}"));
        }
        if (problems.Count > 0)
            throw new MnemoException($"{source}: Mnemo cannot honour: {string.Join("; ", problems)}");
        return model;
    }

    /// <summary>The attention layers of an fla hybrid (its "attn": null, one object or a list of them): which layers, and
    /// their sliding window (0 = none). Mnemo's attention has the model's heads, no GQA, no bias, rotary base 10,000.</summary>
    static (HashSet<int> Layers, int Window)? Hybrid(JsonNode? attn, int layers, int heads, List<string> problems)
    {
        if (attn is null || attn.GetValueKind() == JsonValueKind.Null) return null;
        var specs = attn is JsonArray list ? [.. list] : new List<JsonNode?> { attn };
        var (chosen, windows) = (new HashSet<int>(), new HashSet<int>());
        foreach (var spec in specs)
        {
            if (spec is not JsonObject o)
            {
                problems.Add($"\"attn\": {attn.ToJsonString()} (expected an object or a list of objects)");
                return null;
            }
            foreach (var (key, value) in o)
            {
                string v = value?.ToJsonString() ?? "null";
                bool ok = key switch
                {
                    "layers" => value is JsonArray,
                    "num_heads" => v == heads.ToString(CultureInfo.InvariantCulture),
                    "num_kv_heads" => value is null || v == heads.ToString(CultureInfo.InvariantCulture),
                    "qkv_bias" => v == "false",
                    "window_size" => value is null || (int.TryParse(v, out int w) && w > 0),
                    "rope_theta" => double.TryParse(v, CultureInfo.InvariantCulture, out double theta) && theta == 10000,
                    _ => false,
                };
                if (!ok) problems.Add($"\"attn.{key}\": {v} ({AttentionWhy(key, heads)})");
            }
            if (o["layers"] is JsonArray indices)
                foreach (var index in indices)
                {
                    bool number = index?.GetValueKind() == JsonValueKind.Number;
                    if (number && index!.GetValue<int>() is int l && l >= 0 && l < layers) chosen.Add(l);
                    else problems.Add($"\"attn.layers\": {index?.ToJsonString()} is not a layer index below {layers}");
                }
            else problems.Add("\"attn.layers\": missing");
            windows.Add(o["window_size"] is JsonValue wv && wv.GetValueKind() == JsonValueKind.Number ? wv.GetValue<int>() : 0);
        }
        if (windows.Count > 1) problems.Add($"\"attn\": window sizes {string.Join(", ", windows)} differ (Mnemo's layers share one)");
        return (chosen, windows.FirstOrDefault());
    }

    static string AttentionWhy(string key, int heads) => key switch
    {
        "num_heads" or "num_kv_heads" => $"Mnemo's attention layers have the model's {heads} heads, for q, k and v alike",
        "qkv_bias" => "Mnemo's attention projections have no bias",
        "rope_theta" => "Mnemo's rotary base is 10,000",
        "window_size" => "a window is a positive number of tokens, or null",
        _ => "not a key Mnemo knows for fla's attention layers",
    };

    /// <summary>The fla config.json of a Mnemo model; refuses a model fla would compute differently.</summary>
    public static JsonObject ToHf(ModelConfig m)
    {
        var problems = new List<string>();
        var mixers = Enumerable.Range(0, m.NumLayers).Select(m.MixerOf).ToArray();
        var memories = mixers.Where(k => k != MixerKind.Attention).Distinct().ToArray();
        var attentionLayers = Enumerable.Range(0, m.NumLayers).Where(l => mixers[l] == MixerKind.Attention).ToArray();
        if (memories.Length != 1 || memories[0] is not (MixerKind.GatedDeltaNet or MixerKind.DeltaNet))
            problems.Add($"model mixers {string.Join(", ", mixers.Distinct().Select(k => Runtime.Names.Of(k)))} (gated_delta_net or " +
                "delta_net layers export, with attention layers between them)");
        if (!m.ShortConv) problems.Add("model.short_conv false (fla would apply SiLU to q, k, v)");
        if (m.Positions == PositionKind.Learned) problems.Add("model.positions learned (fla's delta rules have no positions)");
        if (attentionLayers.Length > 0)
        {
            if (m.Positions != PositionKind.Rope) problems.Add("model.positions none (fla's attention layers are rotary)");
            if (m.Attention.ShortConv ?? m.ShortConv) problems.Add("short convolutions on attention (fla's attention has none)");
            if (m.Attention.LandmarkBlock > 0) problems.Add("model.attention.landmark_block (not in fla)");
        }
        if (m.OutputGateOpen) problems.Add("model.output_gate_open (fla's g_proj has no bias)");
        if (m.Segments.Kind != SegmentMemoryKind.None) problems.Add("model.segments (not in fla)");
        if (m.Reweaving.Enabled) problems.Add("model.reweaving (not in fla)");
        if (problems.Count > 0) throw new MnemoException($"this model cannot be exported to fla: {string.Join("; ", problems)}");
        m = m with { Mixer = memories[0] };
        bool gated = m.Mixer == MixerKind.GatedDeltaNet;
        int keyDim = m.KeyHeadDim * m.NumHeads, valueDim = m.ValueHeadDim * m.NumHeads;
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(gated ? "GatedDeltaNetForCausalLM" : "DeltaNetForCausalLM"),
            ["model_type"] = gated ? GatedDeltaNet : DeltaNet,
            ["attn_mode"] = "chunk",
            ["hidden_size"] = m.DModel,
            ["num_hidden_layers"] = m.NumLayers,
            ["num_heads"] = m.NumHeads,
        };
        if (gated)
        {
            o["head_dim"] = m.KeyHeadDim;
            o["expand_v"] = (double)m.ValueHeadDim / m.KeyHeadDim;
            o["num_v_heads"] = null;
        }
        else
        {
            o["expand_k"] = (double)keyDim / m.DModel;
            o["expand_v"] = (double)valueDim / m.DModel;
            o["use_beta"] = true;
            o["use_output_norm"] = true;
            o["qk_norm"] = "l2";
            o["qk_activation"] = "silu";
        }
        o["use_gate"] = m.OutputGate ?? gated;
        o["use_short_conv"] = true;
        o["allow_neg_eigval"] = false;
        o["conv_size"] = m.ConvSize;
        o["hidden_act"] = "swish";
        o["intermediate_size"] = m.MlpHidden;
        o["norm_eps"] = m.NormEps;
        o["attn"] = attentionLayers.Length == 0 ? null : new JsonObject
        {
            ["layers"] = new JsonArray([.. attentionLayers.Select(l => (JsonNode)l)]),
            ["num_heads"] = m.NumHeads,
            ["num_kv_heads"] = m.NumHeads,
            ["qkv_bias"] = false,
            ["window_size"] = m.Attention.Window > 0 ? m.Attention.Window : null,
            ["rope_theta"] = 10000.0,
        };
        if (attentionLayers.Length > 0) o["max_position_embeddings"] = m.MaxPositions;
        o["vocab_size"] = m.VocabSize;
        o["tie_word_embeddings"] = m.TieEmbeddings;
        o["torch_dtype"] = "float32";
        return o;
    }

    static string Json<T>(T value) => value switch
    {
        null => "null",
        string s => $"\"{s}\"",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
