using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

[Collection(TorchCollection.Name)]
public class LanguageModelTests
{
    static ModelConfig Small(Func<ModelConfig, ModelConfig>? edit = null)
    {
        var c = new ModelConfig { VocabSize = 50, DModel = 16, NumHeads = 2, NumLayers = 2, MlpRatio = 2 };
        return edit is null ? c : edit(c);
    }

    static LanguageModel Build(ModelConfig c, long seed = 1)
    {
        TorchRuntime.Seed(seed);
        return new LanguageModel(c);
    }

    /// <summary>Bit-identical: same shape, same dtype, every element equal.</summary>
    static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static Tensor Tokens(long b, long t, long seed = 7)
    {
        var g = new Generator((ulong)seed);
        return randint(0, 50, [b, t], generator: g);
    }

    [Fact]
    public void Parameter_names_follow_fla()
    {
        var names = Build(Small()).named_parameters().Select(p => p.name).ToHashSet();
        string[] expected =
        [
            "model.embeddings.weight", "model.norm.weight", "lm_head.weight",
            "model.layers.0.attn_norm.weight", "model.layers.0.mlp_norm.weight",
            "model.layers.0.attn.q_proj.weight", "model.layers.0.attn.k_proj.weight", "model.layers.0.attn.v_proj.weight",
            "model.layers.0.attn.o_proj.weight", "model.layers.0.attn.q_conv1d.weight", "model.layers.0.attn.k_conv1d.weight",
            "model.layers.0.attn.v_conv1d.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
            "model.layers.1.mlp.down_proj.weight",
        ];
        Assert.All(expected, n => Assert.Contains(n, names));
    }

    [Fact]
    public void Tied_head_has_no_lm_head_and_reuses_the_embedding()
    {
        var model = Build(Small(c => c with { TieEmbeddings = true, MlpRatio = 0 }));
        var names = model.named_parameters().Select(p => p.name).ToList();
        Assert.DoesNotContain("lm_head.weight", names);
        Assert.DoesNotContain(names, n => n.Contains("mlp"));
        using var logits = model.forward(Tokens(2, 9));
        Assert.Equal(new long[] { 2, 9, 50 }, logits.shape);
    }

    [Theory]
    [InlineData(PositionKind.Rope, 0, true)]
    [InlineData(PositionKind.Learned, 0, false)]
    [InlineData(PositionKind.None, 3, true)]
    public void Output_at_t_does_not_depend_on_later_tokens(PositionKind positions, int window, bool conv)
    {
        var model = Build(Small(c =>
            c with { Positions = positions, Attention = new() { Window = window }, ShortConv = conv, MaxPositions = 32 }));
        using var scope = NewDisposeScope();
        var x = Tokens(2, 12);
        var y = x.clone();
        y[.., 8..] = (y[.., 8..] + 1) % 50;                  // change every token from position 8 on
        var a = model.forward(x);
        var b = model.forward(y);
        Assert.True(a[.., ..8].allclose(b[.., ..8], rtol: 0, atol: 0)); // positions < 8 are bit-identical
        Assert.False(a[.., 8..].allclose(b[.., 8..]));
    }

    [Fact]
    public void Sliding_window_hides_tokens_beyond_the_window()
    {
        // One layer, no convolution: position t sees exactly tokens t−W+1 … t.
        var model = Build(Small(c => c with { NumLayers = 1, Attention = new() { Window = 4 }, ShortConv = false }));
        using var scope = NewDisposeScope();
        var x = Tokens(1, 16);
        var y = x.clone();
        y[0, 3] = (y[0, 3] + 1) % 50;                          // token 3 is outside the window of positions ≥ 7
        var a = model.forward(x);
        var b = model.forward(y);
        Assert.True(a[0, 7..].allclose(b[0, 7..], rtol: 0, atol: 0));
        Assert.False(a[0, 3..7].allclose(b[0, 3..7]));
    }

    [Fact]
    public void Full_window_equals_no_window()
    {
        using var scope = NewDisposeScope();
        var x = Tokens(2, 10);
        var full = Build(Small()).forward(x);
        var windowed = Build(Small(c => c with { Attention = new() { Window = 10 } })).forward(x);
        var windowedMasked = Build(Small(c => c with { Attention = new() { Window = 9 } })).forward(x);
        Assert.True(full.allclose(windowed, rtol: 1e-5, atol: 1e-6));
        Assert.False(full.allclose(windowedMasked, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Same_seed_same_weights()
    {
        var a = Build(Small(), seed: 3).state_dict();
        var b = Build(Small(), seed: 3).state_dict();
        var c = Build(Small(), seed: 4).state_dict();
        Assert.All(a.Keys, k => Assert.True(Same(a[k], b[k])));
        Assert.Contains(a.Keys, k => !Same(a[k], c[k]));
    }

    [Fact]
    public void Save_and_load_round_trip_exactly()
    {
        using var dir = new Tmp.Dir();
        var source = Build(Small(), seed: 1);
        var target = Build(Small(), seed: 2);
        TensorIO.SaveStateDict(source, dir["m.safetensors"]);
        TensorIO.LoadStateDict(target, dir["m.safetensors"]);
        using var x = Tokens(2, 11);
        using var a = source.forward(x);
        using var b = target.forward(x);
        Assert.True(Same(a, b));
    }

    [Fact]
    public void Loading_weights_of_another_shape_names_the_tensor()
    {
        using var dir = new Tmp.Dir();
        TensorIO.SaveStateDict(Build(Small()), dir["m.safetensors"]);
        var wider = Build(Small(c => c with { DModel = 32 }));
        var e = Assert.Throws<MnemoException>(() => TensorIO.LoadStateDict(wider, dir["m.safetensors"]));
        Assert.Contains("model.embeddings.weight", e.Message);
        Assert.Contains("shape", e.Message);
        var withoutMlp = Build(Small(c => c with { MlpRatio = 0 }));
        Assert.Contains("unexpected", Assert.Throws<MnemoException>(
            () => TensorIO.LoadStateDict(withoutMlp, dir["m.safetensors"])).Message);
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Bool)]
    public void Tensors_round_trip_through_safetensors_entries(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var t = (randn(3, 5, 2) * 10).to(dtype);
        var back = TensorIO.ToTensor(TensorIO.ToEntry("x", t));
        Assert.Equal(t.dtype, back.dtype);
        Assert.Equal(t.shape, back.shape);
        Assert.True(Same(t, back));
        Assert.True(Same(TensorIO.ToTensor(TensorIO.ToEntry("s", tensor(2.5))), tensor(2.5)));   // scalar
        Assert.Equal(new long[] { 0, 4 }, TensorIO.ToTensor(TensorIO.ToEntry("e", zeros(0, 4))).shape); // empty
    }
}
