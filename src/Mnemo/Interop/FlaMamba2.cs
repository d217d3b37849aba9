using System.Text.Json.Nodes;
using Mnemo.Layers;

namespace Mnemo.Interop;

/// <summary>
/// The Mamba2ForCausalLM layout of fla and of Hugging Face transformers (docs/interop.md#mamba-2), both model_type
/// "mamba2" with the same weight names but different config keys. Blocks are x + mixer(norm(x)) without an MLP, which
/// is Mnemo's block with model.mlp_ratio 0; the mixer is Mnemo's Mamba-2 with one group. Names differ only in the
/// prefixes: backbone.embeddings / layers.i.norm / layers.i.mixer / norm_f for Mnemo's model.embeddings /
/// layers.i.attn_norm / layers.i.attn / norm.
/// </summary>
public static class FlaMamba2
{
    public const string ModelType = "mamba2";

    /// <summary>Keys that only set the initialisation, the kernels or the precision of the residual stream.</summary>
    static readonly string[] Inert =
    [
        "A_init_range", "dt_min", "dt_max", "dt_init_floor", "conv_init", "rescale_prenorm_residual", "residual_in_fp32",
        "chunk_size", "time_step_rank", "time_step_min", "time_step_max", "time_step_floor",
    ];

    /// <summary>Reads fla's or Hugging Face's Mamba2Config; <paramref name="source"/> names the file in errors.</summary>
    public static ModelConfig FromHf(JsonObject config, IEnumerable<string> inert, string source)
    {
        var keys = new HfConfigKeys(config, inert.Concat(Inert));
        // Hugging Face writes layer_norm_epsilon, time_step_limit and rms_norm where fla writes norm_eps, dt_limit and
        // rmsnorm; its default n_groups is 8, fla's 1.
        bool hf = config.ContainsKey("layer_norm_epsilon");
        int d = keys.Get("hidden_size", hf ? 4096 : 2048), layers = keys.Get("num_hidden_layers", hf ? 64 : 48);
        int state = keys.Get("state_size", 128), headDim = keys.Get("head_dim", 64), expand = keys.Get("expand", 2);
        int vocab = keys.Get("vocab_size", hf ? 32768 : 32000), convSize = keys.Get("conv_kernel", 4);
        double eps = hf ? keys.Get("layer_norm_epsilon", 1e-5) : keys.Get("norm_eps", 1e-5);
        bool tied = keys.Get("tie_word_embeddings", false);
        int inner = expand * d, heads = headDim > 0 ? inner / headDim : 0;
        if (keys.Get<int?>("num_heads", null) is { } declared && declared != heads)
            keys.Problems.Add($"\"num_heads\": {declared} (expand · hidden_size / head_dim is {heads}; both layouts need them equal)");
        if (headDim <= 0 || inner % headDim != 0)
            keys.Problems.Add($"\"head_dim\": {headDim} does not divide expand · hidden_size = {inner}");
        keys.Require("n_groups", hf ? 8 : 1, 1, "Mnemo's Mamba-2 shares one B and C across all heads");
        keys.Require("use_bias", false, false, "Mnemo's in_proj and out_proj have no bias");
        keys.Require("use_conv_bias", true, true, "Mnemo's Mamba-2 convolution has a bias");
        keys.Require("D_has_hdim", false, false, "Mnemo's D is one number per head");
        keys.Require(hf ? "rms_norm" : "rmsnorm", true, true, "Mnemo's Mamba-2 always has the gated RMSNorm");
        keys.Require("norm_before_gate", false, false, "Mnemo gates before the norm: RMSNorm(y ⊙ silu(z))");
        if (keys.Get("hidden_act", "silu") is var act && act is not ("silu" or "swish"))
            keys.Problems.Add($"\"hidden_act\": \"{act}\" (Mnemo's Mamba-2 convolution ends in SiLU)");
        string limitKey = hf ? "time_step_limit" : "dt_limit";
        if (keys.Node(limitKey) is { } limit && !NoLimit(limit))
            keys.Problems.Add($"\"{limitKey}\": {limit.ToJsonString()} (Mnemo does not clamp Δ; only [0.0, Infinity] is honoured)");
        keys.Unknown(ModelType);

        var model = new ModelConfig
        {
            Mixer = MixerKind.Mamba2,
            VocabSize = vocab, DModel = d, NumLayers = layers, NumHeads = Math.Max(heads, 1), Positions = PositionKind.None,
            ShortConv = true, ConvSize = convSize, ExpandK = (double)state * heads / d, ExpandV = expand, MlpRatio = 0,
            TieEmbeddings = tied, NormEps = eps,
        };
        if (keys.Problems.Count == 0)
        {
            if (model.KeyHeadDim != state || model.ValueHeadDim != headDim)
                keys.Problems.Add($"state_size {state} and head_dim {headDim} do not map onto expand_k / expand_v exactly");
            keys.Problems.AddRange(model.Validate().Select(p => $"{p.Item1}: {p.Item2}"));
        }
        if (keys.Problems.Count > 0)
            throw new MnemoException($"{source}: Mnemo cannot honour: {string.Join("; ", keys.Problems)}");
        return model;
    }

    /// <summary>[0, ∞): the limit both libraries default to, under which Δ is not clamped.</summary>
    static bool NoLimit(JsonNode limit) =>
        limit is JsonArray { Count: 2 } pair && HfConfigKeys.Number(pair[0]) == 0
        && HfConfigKeys.Number(pair[1]) == double.PositiveInfinity;

    /// <summary>Whether <see cref="ToHf"/> writes this model: Mamba-2 in every layer.</summary>
    public static bool Describes(ModelConfig m) => Enumerable.Range(0, m.NumLayers).All(l => m.MixerOf(l) == MixerKind.Mamba2);

    /// <summary>fla's config.json for a Mnemo Mamba-2 model; refuses one fla would compute differently.</summary>
    public static JsonObject ToHf(ModelConfig m, List<string> problems)
    {
        int inner = m.ValueHeadDim * m.NumHeads;
        if (m.MlpHidden > 0) problems.Add("model.mlp_ratio is not 0 (fla's Mamba-2 blocks have no MLP)");
        if (inner % m.DModel != 0) problems.Add($"Mamba-2 width {inner} is not a whole multiple of d_model {m.DModel} (fla's expand)");
        if (m.Positions == PositionKind.Learned) problems.Add("model.positions learned (fla's Mamba-2 has no positions)");
        return new JsonObject
        {
            ["architectures"] = new JsonArray("Mamba2ForCausalLM"),
            ["model_type"] = ModelType,
            ["hidden_size"] = m.DModel,
            ["num_hidden_layers"] = m.NumLayers,
            ["state_size"] = m.KeyHeadDim,
            ["expand"] = inner / m.DModel,
            ["head_dim"] = m.ValueHeadDim,
            ["num_heads"] = m.NumHeads,
            ["conv_kernel"] = m.ConvSize,
            ["n_groups"] = 1,
            ["use_bias"] = false,
            ["use_conv_bias"] = true,
            ["D_has_hdim"] = false,
            ["hidden_act"] = "silu",
            ["rmsnorm"] = true,
            ["norm_before_gate"] = false,
            ["norm_eps"] = m.NormEps,
            // dt_limit is left out: fla's default [0, ∞) does not clamp, and JSON cannot write ∞ as Python reads it.
            ["vocab_size"] = m.VocabSize,
            ["tie_word_embeddings"] = m.TieEmbeddings,
            ["torch_dtype"] = "float32",
        };
    }

    /// <summary>The name fla gives a parameter of Mnemo's Mamba-2 language model.</summary>
    public static string FlaName(string name)
    {
        if (name == "model.norm.weight") return "backbone.norm_f.weight";
        if (!name.StartsWith("model.", StringComparison.Ordinal)) return name;                  // lm_head.weight
        string rest = name["model.".Length..];
        if (rest.StartsWith("layers.", StringComparison.Ordinal))
            rest = rest.Replace(".attn_norm.", ".norm.", StringComparison.Ordinal).Replace(".attn.", ".mixer.", StringComparison.Ordinal);
        return "backbone." + rest;
    }
}
