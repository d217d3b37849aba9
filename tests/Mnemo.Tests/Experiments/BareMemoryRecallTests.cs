using Mnemo.Experiments;

namespace Mnemo.Tests.Experiments;

/// <summary>
/// What a bare deep memory stores in context with fixed gates (the probe behind the Titans default): the reasons the
/// layer's memory is a plain MLP with normalised steps rather than the residual LayerNorm wrapper.
/// </summary>
[Collection(TorchCollection.Name)]
public class BareMemoryRecallTests
{
    static BareMemoryResult Probe(string variant, double theta, int chunk, double valueStd = 1) => BareMemoryRecall.Run(
        new BareMemorySettings
        {
            Variants = [BareMemoryVariant.All.Single(v => v.Name == variant)],
            Thetas = [theta],
            ChunkSizes = [chunk],
            Sequences = 64,
            ValueStd = valueStd,
        }).Single();

    [Fact]
    public void Normalised_steps_store_every_pair_as_the_delta_rule_does_where_plain_steps_overshoot()
    {
        // 8 pairs at θ = 0.5 (the layer's largest rate: a full delta-rule write), then 40 filler writes at 0.05.
        Assert.True(Probe("delta_rule", 0.5, 16).Recall >= 0.99);
        var normalised = Probe("mlp_normalized", 0.5, 16);
        Assert.True(normalised.Recall >= 0.99, $"normalised 2-layer memory recalled {normalised.Recall:P1}");
        var plain = Probe("mlp", 0.5, 16);
        Assert.True(plain.Recall <= 0.6, $"plain 2-layer memory recalled {plain.Recall:P1}");
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.5)]
    public void With_the_residual_layernorm_and_one_token_chunks_only_the_first_write_is_stored(double theta)
    {
        // LN(f) at f = 0 (the zero output layer) has the gradient (g − mean g)/√ε: the first write is ~316× too large,
        // the read is scale-invariant in W_L, so every later write moves it by θ/‖W_L‖², next to nothing.
        var r = Probe("mlp_layernorm", theta, 1);
        Assert.True(r.RecallPerPair[0] >= 0.9, $"first pair {r.RecallPerPair[0]:P0}");
        Assert.True(r.RecallPerPair.Skip(1).Average() <= 0.3, $"later pairs {r.RecallPerPair.Skip(1).Average():P0}");
        Assert.True(r.LastLayerNorm >= 100, $"‖W_L‖ = {r.LastLayerNorm}");
    }

    [Fact]
    public void Memora_stores_pairs_only_when_its_hidden_rows_start_near_one_hot()
    {
        // Softmax rows of small logits are nearly uniform: every key reads almost the same hidden vector (Σ_i k_i), and
        // an exponentiated-gradient step moves a uniform row by ~1/out of the step (docs/deep-memories.md, 2e).
        var peaked = Probe("memora", 0.5, 16);
        Assert.True(peaked.Recall >= 0.85, $"rows near one-hot recalled {peaked.Recall:P1}");
        var uniform = Probe("memora_fan_in_init", 0.5, 16);
        Assert.True(uniform.Recall <= 0.4, $"rows near uniform recalled {uniform.Recall:P1}");
    }

    [Theory]
    [InlineData("moneta_zero_start")]
    [InlineData("moneta_objective")]
    public void Moneta_keeps_pairs_written_in_one_chunk_and_loses_them_across_chunks(string variant)
    {
        // Inside one chunk every gradient is taken at the initial weights (pure Hebbian writes); across one-token
        // chunks the ℓ3 objective's step grows with e² and the ℓ4 map turns shrinking A into a larger W, where the
        // plain 2-layer memory keeps every pair (docs/deep-memories.md, 2e).
        var oneChunk = Probe(variant, 0.15, 16);
        Assert.True(oneChunk.Recall >= 0.95, $"{variant}, one chunk: {oneChunk.Recall:P1}");
        var perToken = Probe(variant, 0.15, 1);
        Assert.True(perToken.Recall <= 0.85, $"{variant}, chunks of 1: {perToken.Recall:P1}");
        if (variant == "moneta_zero_start") Assert.True(Probe("mlp_normalized", 0.15, 1).Recall >= 0.99);   // not any 2-layer memory's loss
    }

    [Fact]
    public void Monetas_map_started_at_zero_blows_small_writes_up_and_the_unit_sphere_start_does_not()
    {
        // W = A/‖A‖₄² is homogeneous of degree −1: small writes (a fresh model's values, ~0.1) into an output layer that
        // starts at A = 0 leave weights ~1/‖A‖ large, and the next one-token chunk's steps overwrite the pairs. Started
        // on the unit ℓ4 sphere (W = A there) the map stays near its start (docs/deep-memories.md, 2g).
        var zero = Probe("moneta_zero_start", 0.5, 1, valueStd: 0.1);
        var unit = Probe("moneta", 0.5, 1, valueStd: 0.1);
        double titans = Probe("mlp_normalized", 0.5, 1, valueStd: 0.1).LastLayerNorm;
        Assert.True(zero.LastLayerNorm >= 10 * titans, $"zero start ‖W_L‖ {zero.LastLayerNorm:G3}, Titans' memory {titans:G3}");
        Assert.True(unit.LastLayerNorm <= 10, $"unit start ‖W_L‖ {unit.LastLayerNorm:G3}");
        Assert.True(zero.Recall <= 0.45, $"zero start recalled {zero.Recall:P1}");
        Assert.True(unit.Recall >= 0.8, $"unit start recalled {unit.Recall:P1}");
    }

    [Fact]
    public void The_same_seed_gives_the_same_table()
    {
        var a = Probe("mlp_normalized", 0.3, 4);
        var b = Probe("mlp_normalized", 0.3, 4);
        Assert.Equal(a.RecallPerPair, b.RecallPerPair);
        Assert.Equal(a.RelativeError, b.RelativeError);
    }
}
