using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Layers;

namespace Mnemo.Interop;

/// <summary>
/// fla's Hugging Face config.json ↔ Mnemo's <see cref="ModelConfig"/> (docs/interop.md#configjson-field-by-field), for
/// the architectures Mnemo computes exactly as fla does: gated_deltanet, delta_net and gla, with fla's attention layers
/// between them or not, and mamba2 (<see cref="FlaMamba2"/>). Every key is either mapped, known not to change the math,
/// or refused; one error names every key that cannot be honoured.
/// </summary>
public static class FlaConfig
{
    public const string GatedDeltaNet = "gated_deltanet", DeltaNet = "delta_net", Gla = "gla", Kda = "kda",
        GatedDeltaProduct = "gated_deltaproduct";

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
        if (type == FlaMamba2.ModelType) return FlaMamba2.FromHf(config, Inert, source);
        var mixer = type switch
        {
            GatedDeltaNet => MixerKind.GatedDeltaNet,
            DeltaNet => MixerKind.DeltaNet,
            Gla => MixerKind.Gla,
            Kda => MixerKind.Kda,
            // Gated DeltaProduct is Gated DeltaNet with Householder steps, or DeltaNet with them when it has no forget gate.
            GatedDeltaProduct => config["use_forget_gate"] is JsonValue f && f.GetValueKind() == JsonValueKind.True
                ? MixerKind.GatedDeltaNet : MixerKind.DeltaNet,
            _ => throw new MnemoException($"{source}: model_type \"{type}\" is not one Mnemo imports; it imports " +
                $"{GatedDeltaNet}, {DeltaNet}, {Gla}, {Kda}, {GatedDeltaProduct} and {FlaMamba2.ModelType} (docs/interop.md)"),
        };
        bool gated = mixer == MixerKind.GatedDeltaNet, gla = mixer == MixerKind.Gla, kda = mixer == MixerKind.Kda;
        bool product = type == GatedDeltaProduct;
        var keys = new HfConfigKeys(config, Inert);
        var problems = keys.Problems;
        T Get<T>(string key, T fallback) => keys.Get(key, fallback);
        void Require<T>(string key, T fallback, T wanted, string why) => keys.Require(key, fallback, wanted, why);

        int d = Get("hidden_size", 2048), layers = Get("num_hidden_layers", gated || product ? 21 : 24);
        int heads = Get("num_heads", gated || product ? 6 : gla ? 4 : 16), vocab = Get("vocab_size", 32000), convSize = Get("conv_size", 4);
        double eps = Get("norm_eps", 1e-6);
        // KDA's output gate is part of the layer (sigmoid of a low-rank g_proj): no key turns it off.
        bool useGate = gla || product ? Get("use_output_gate", true) : kda || Get("use_gate", gated);
        bool tied = Get("tie_word_embeddings", false);
        int steps = product ? Get("num_householder", 1) : 1;
        if (product) Get("use_forget_gate", false);                           // read above (it chose the mixer); checked here
        bool shortConv = Get("use_short_conv", !gla);
        int keyDim, valueDim;
        if (gated || kda || product)
        {
            int headDim = Get("head_dim", kda ? 128 : 256);
            double expandV = Get("expand_v", kda ? 1.0 : 2.0);
            keyDim = heads * headDim;
            valueDim = heads * (int)(headDim * expandV);
            if (Get<int?>("num_v_heads", null) is { } v && v != heads)
                problems.Add($"\"num_v_heads\": {v} (grouped value heads; Mnemo's heads share one count, num_heads {heads})");
            if (kda)
            {
                Require("safe_gate", false, false, "Mnemo's KDA gate is −exp(A_log)·softplus(f_proj x + dt_bias), unclamped");
                keys.RequireNull("lower_bound", "Mnemo's KDA gate is −exp(A_log)·softplus(f_proj x + dt_bias), unclamped");
            }
        }
        else if (gla)
        {
            keyDim = (int)(d * Get("expand_k", 0.5));
            valueDim = (int)(d * Get("expand_v", 1.0));
            if (Get<int?>("num_kv_heads", null) is { } kv && kv != heads)
                problems.Add($"\"num_kv_heads\": {kv} (grouped keys and values; Mnemo's heads share one count, num_heads {heads})");
            keys.RequireNull("feature_map", "Mnemo's GLA reads q and k as they are");
            keys.RequireNull("clamp_min", "Mnemo's GLA does not clamp its log-decay");
            Require("use_gk", true, true, "Mnemo's GLA decays per key channel");
            Require("use_gv", false, false, "Mnemo's GLA has no value-channel decay");
            Require("elementwise_affine", true, true, "Mnemo's output norm has a weight");
        }
        else
        {
            keyDim = (int)(d * Get("expand_k", 1.0));
            valueDim = (int)(d * Get("expand_v", 1.0));
            Require("use_beta", true, true, "Mnemo's DeltaNet always has β = σ(b_proj x)");
            Require("qk_norm", "l2", "l2", "Mnemo's DeltaNet L2-normalises q and k");
            Require("qk_activation", "silu", "silu", "Mnemo's short convolution ends in SiLU");
            keys.Ignore("use_output_norm");                                   // fla ignores it: o_norm always runs
        }
        // Without the convolution fla's delta rules apply SiLU to q, k, v directly, which Mnemo does not (fla's GLA applies
        // none, as Mnemo).
        if (!gla && !shortConv) problems.Add("\"use_short_conv\": false (fla's delta rules then apply SiLU to q, k, v; Mnemo does not)");
        bool negativeEigenvalues = !gla && Get("allow_neg_eigval", false);
        if (Get("hidden_act", "swish") is var act && act is not ("swish" or "silu"))
            problems.Add($"\"hidden_act\": \"{act}\" (Mnemo's MLP is SwiGLU)");
        var attention = Hybrid(keys.Node("attn"), layers, heads, problems);
        keys.RequireNull("attnres_block_size", "attention residuals are not in Mnemo");

        // fla's MLP width when intermediate_size is null: int(D · hidden_ratio · 2 / 3), rounded up to a multiple of 256.
        int intermediate = Get<int?>("intermediate_size", null)
            ?? 256 * (((int)(d * Get("hidden_ratio", 4.0) * 2 / 3) + 255) / 256);
        keys.Unknown(type);
        if (heads <= 0 || keyDim % heads != 0 || valueDim % heads != 0)
            problems.Add($"key width {keyDim} and value width {valueDim} must split over num_heads {heads}");

        var model = new ModelConfig
        {
            Mixer = mixer,
            LayerMixers = attention is null
                ? []
                : [.. Enumerable.Range(0, layers).Select(l => attention.Value.Layers.Contains(l) ? MixerKind.Attention : mixer)],
            VocabSize = vocab, DModel = d, NumLayers = layers, NumHeads = heads,
            Positions = attention is null ? PositionKind.None : PositionKind.Rope,
            MaxPositions = Get("max_position_embeddings", 2048),
            ShortConv = shortConv, ConvSize = convSize, ExpandK = (double)keyDim / d, ExpandV = (double)valueDim / d,
            OutputGate = kda ? null : useGate, MlpRatio = (double)intermediate / d, TieEmbeddings = tied, NormEps = eps,
            Matrix = new MatrixMemoryConfig { NegativeEigenvalues = negativeEigenvalues, HouseholderSteps = steps },
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
        if (m.Segments.Kind != SegmentMemoryKind.None) problems.Add("model.segments (not in fla)");
        if (m.Reweaving.Enabled) problems.Add("model.reweaving (not in fla)");
        if (FlaMamba2.Describes(m))
        {
            var mamba = FlaMamba2.ToHf(m, problems);
            return problems.Count == 0 ? mamba : throw NotExportable(problems);
        }
        var mixers = Enumerable.Range(0, m.NumLayers).Select(m.MixerOf).ToArray();
        var memories = mixers.Where(k => k != MixerKind.Attention).Distinct().ToArray();
        var attentionLayers = Enumerable.Range(0, m.NumLayers).Where(l => mixers[l] == MixerKind.Attention).ToArray();
        if (memories.Length != 1 || memories[0] is not (MixerKind.GatedDeltaNet or MixerKind.DeltaNet or MixerKind.Gla or MixerKind.Kda))
            problems.Add($"model mixers {string.Join(", ", mixers.Distinct().Select(k => Runtime.Names.Of(k)))} (mamba2 alone, or " +
                "gated_delta_net, delta_net, gla or kda layers export, with attention layers between them)");
        else if (!m.ShortConv && memories[0] != MixerKind.Gla)
            problems.Add("model.short_conv false (fla's delta rules would apply SiLU to q, k, v)");
        if (m.Positions == PositionKind.Learned) problems.Add("model.positions learned (fla's delta rules have no positions)");
        if (attentionLayers.Length > 0)
        {
            if (m.Positions != PositionKind.Rope) problems.Add("model.positions none (fla's attention layers are rotary)");
            if (m.Attention.ShortConv ?? m.ShortConv) problems.Add("short convolutions on attention (fla's attention has none)");
            if (m.Attention.LandmarkBlock > 0) problems.Add("model.attention.landmark_block (not in fla)");
        }
        if (m.OutputGateOpen) problems.Add("model.output_gate_open (fla's g_proj has no bias)");
        if (problems.Count > 0) throw NotExportable(problems);
        m = m with { Mixer = memories[0] };
        bool gated = m.Mixer == MixerKind.GatedDeltaNet, gla = m.Mixer == MixerKind.Gla, kda = m.Mixer == MixerKind.Kda;
        bool product = m.Matrix.HouseholderSteps > 1;                        // fla's Gated DeltaProduct, forget gate or not
        int keyDim = m.KeyHeadDim * m.NumHeads, valueDim = m.ValueHeadDim * m.NumHeads;
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(product ? "GatedDeltaProductForCausalLM" : gated ? "GatedDeltaNetForCausalLM"
                : gla ? "GLAForCausalLM" : kda ? "KDAForCausalLM" : "DeltaNetForCausalLM"),
            ["model_type"] = product ? GatedDeltaProduct : gated ? GatedDeltaNet : gla ? Gla : kda ? Kda : DeltaNet,
            ["attn_mode"] = "chunk",
            ["hidden_size"] = m.DModel,
            ["num_hidden_layers"] = m.NumLayers,
            ["num_heads"] = m.NumHeads,
        };
        if (gated || kda || product)
        {
            o["head_dim"] = m.KeyHeadDim;
            o["expand_v"] = (double)m.ValueHeadDim / m.KeyHeadDim;
            if (!product) o["num_v_heads"] = null;
            if (product)
            {
                o["use_output_gate"] = m.OutputGate ?? gated;
                o["use_forget_gate"] = gated;
                o["num_householder"] = m.Matrix.HouseholderSteps;
            }
            if (kda)
            {
                o["safe_gate"] = false;
                o["lower_bound"] = null;
            }
        }
        else if (gla)
        {
            o["expand_k"] = (double)keyDim / m.DModel;
            o["expand_v"] = (double)valueDim / m.DModel;
            o["num_kv_heads"] = null;
            o["feature_map"] = null;
            o["use_output_gate"] = m.OutputGate ?? true;
            o["clamp_min"] = null;
            o["use_gk"] = true;
            o["use_gv"] = false;
            o["elementwise_affine"] = true;
            o["fuse_norm"] = true;
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
        if (!gla && !kda && !product) o["use_gate"] = m.OutputGate ?? gated;
        if (!gla) o["allow_neg_eigval"] = m.Matrix.NegativeEigenvalues;
        o["use_short_conv"] = m.ShortConv;
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

    static MnemoException NotExportable(List<string> problems) =>
        new($"this model cannot be exported to fla: {string.Join("; ", problems)}");

    /// <summary>
    /// The name fla gives a Mnemo parameter: the same, except a GLA layer's output norm, which fla calls g_norm_swish_gate
    /// when the output is gated (its fused norm-and-gate) and g_norm when it is not, and the prefixes of a Mamba-2 model
    /// (<see cref="FlaMamba2.FlaName"/>).
    /// </summary>
    public static string FlaName(string name, ModelConfig m)
    {
        if (FlaMamba2.Describes(m)) return FlaMamba2.FlaName(name);
        const string prefix = "model.layers.", norm = ".attn.o_norm.weight";
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(norm, StringComparison.Ordinal)) return name;
        int layer = int.Parse(name.AsSpan(prefix.Length, name.Length - prefix.Length - norm.Length), CultureInfo.InvariantCulture);
        if (m.MixerOf(layer) != MixerKind.Gla) return name;
        return $"{prefix}{layer}.attn.{((m.OutputGate ?? true) ? "g_norm_swish_gate" : "g_norm")}.weight";
    }
}
