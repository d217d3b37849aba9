using System.Text.Json.Nodes;
using Mnemo.Evaluation;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// Contextual memory reweaving: the whole pass against its equations written out token by token, streaming against the
/// whole pass, gradients into every level's pool, the state it adds, and the config rules.
/// </summary>
[Collection(TorchCollection.Name)]
public class ReweavingTests
{
    const int Pool = 3;

    static ModelConfig Config(MixerKind mixer = MixerKind.Attention) => TinyModels.Config(mixer, c => c with
    {
        InitStd = 0.2,
        Reweaving = new() { Enabled = true, PoolSize = Pool, StateDim = 6, Threshold = 0.5 },
    });

    /// <summary>
    /// h̃_t = h^L_t + σ(W_g h^L_t) ⊙ Σ_ℓ π_{t,ℓ} c^ℓ_t, with c^ℓ_t the attention of W_q h^L_t over the last P states captured
    /// at level ℓ strictly before t, then the final norm; levels from the model's own embeddings and blocks.
    /// </summary>
    static (Tensor Hidden, int Captured) ByHand(LanguageModel model, Tensor tokens)
    {
        var p = model.named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter);
        Tensor Linear(string name, Tensor v) =>
            v.matmul(p[name + ".weight"].T) + (p.TryGetValue(name + ".bias", out var bias) ? bias : 0.0);
        var levels = new List<Tensor> { model.Backbone.Embed(tokens) };                // rope: no positions are added
        foreach (var block in model.Backbone.Layers) levels.Add(block.Forward(levels[^1], null));
        var h = levels[^1];
        var rows = new List<Tensor>();
        int captured = 0;
        for (long b = 0; b < tokens.shape[0]; b++)
        {
            var written = levels.Select(_ => new List<long>()).ToList();
            var outputs = new List<Tensor>();
            for (long t = 0; t < tokens.shape[1]; t++)
            {
                var ht = h[b, t];
                var weights = Linear("model.reweaving.level_proj", ht).softmax(0);
                var rewoven = zeros_like(ht);
                for (int l = 0; l < levels.Count; l++)
                {
                    string pool = $"model.reweaving.pools.{l}.";
                    var notes = written[l].TakeLast(Pool).ToList();
                    if (notes.Count == 0) continue;
                    var q = Linear(pool + "q_proj", ht);
                    var s = notes.Select(j => Linear(pool + "note_proj", levels[l][b, j])).ToList();
                    var scores = stack(s.Select(sj => (q * Linear(pool + "k_proj", sj)).sum() / Math.Sqrt(6)).ToArray()).softmax(0);
                    var read = zeros_like(ht);
                    for (int n = 0; n < notes.Count; n++)
                        read += scores[n] * Linear(pool + "importance", levels[l][b, notes[n]]).sigmoid() * Linear(pool + "v_proj", s[n]);
                    rewoven += weights[l] * read;
                }
                outputs.Add(ht + Linear("model.reweaving.g_proj", ht).sigmoid() * rewoven);
                for (int l = 0; l < levels.Count; l++)
                    if (Linear($"model.reweaving.pools.{l}.importance", levels[l][b, t]).sigmoid().item<double>() > 0.5)
                    {
                        written[l].Add(t);
                        captured++;
                    }
            }
            rows.Add(stack(outputs.ToArray()));
        }
        var hidden = stack(rows.ToArray());
        return (RMSNorm.Normalize(hidden, model.Config.NormEps) * p["model.norm.weight"], captured);
    }

    [Theory]
    [InlineData(MixerKind.Attention)]
    [InlineData(MixerKind.GatedDeltaNet)]
    public void The_whole_pass_is_the_reweaving_written_out_token_by_token(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(Config(mixer));
        var tokens = TinyModels.Tokens(2, 13);
        var (expected, captured) = ByHand(model, tokens);
        Assert.True(Equivalence.RelativeRms(model.Hidden(tokens), expected) <= 1e-12, $"{mixer}");
        Assert.InRange(captured, 10, 2 * 13 * 3 - 10);                                  // selection and the pool bound are both exercised
    }

    [Theory]
    [InlineData(MixerKind.Attention)]
    [InlineData(MixerKind.GatedDeltaNet)]
    public void Streamed_in_any_pieces_equals_the_whole_pass(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(Config(mixer));
        var tokens = TinyModels.Tokens(3, 21);
        using var cache = model.NewCache();
        Assert.True(Equivalence.RelativeRms(TinyModels.Streamed(model, tokens, 6, cache), model.forward(tokens)) <= 1e-12, $"{mixer}");
        Assert.True(Equivalence.RelativeRms(MqarEvaluator.Streamed(model, tokens, 4), model.forward(tokens)) <= 1e-12, "4-token pieces");
        Assert.True(cache.Reweaving.Child("level0").Get("keys")!.shape[1] <= Pool);
    }

    [Fact]
    public void Every_parameter_learns_and_streaming_keeps_live_tensors_flat()
    {
        using (var scope = NewDisposeScope())
        {
            var model = TinyModels.Build(Config(), fp64: false);
            model.forward(TinyModels.Tokens(2, 17)).log_softmax(-1).select(-1, 3).mean().backward();
            TinyModels.AssertEveryParameterHasAGradient(model, "reweaving");
        }
        TinyModels.AssertStreamingKeepsLiveTensorsFlat(TinyModels.Build(Config()), pieces: 20, settledAfter: 8);
    }

    [Fact]
    public void The_pools_are_counted_as_state()
    {
        var c = Config();
        long pools = 3L * Pool * (6 + 16);                                              // L + 1 levels of P notes (key and value)
        Assert.Equal(2L * 100 * 16 + (pools + 1) / 2, c.StateFloatsPerLayer(100));
        Assert.Equal(2L * 100 * 16, (c with { Reweaving = new() }).StateFloatsPerLayer(100));
    }

    [Theory]
    [InlineData("""{"reweaving": {"enabled": true}, "segments": {"kind": "rmt"}}""", "reweaving.enabled")]
    [InlineData("""{"reweaving": {"enabled": true}, "attention": {"landmark_block": 8}}""", "reweaving.enabled")]
    [InlineData("""{"reweaving": {"enabled": true, "pool_size": 0}}""", "reweaving.pool_size")]
    [InlineData("""{"reweaving": {"enabled": true, "threshold": 2}}""", "reweaving.threshold")]
    public void Bad_configs_name_the_field(string json, string field)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigBinder.Bind<ModelConfig>(JsonNode.Parse(json)!, "test"));
        Assert.Contains($"\"{field}\"", error.Message);
    }
}
