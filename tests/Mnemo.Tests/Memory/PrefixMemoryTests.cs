using Mnemo.Layers;
using Mnemo.Memory.Matrix;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// JRT-RNN's prefix linear attention: the kernel started from the encoder's state S^e equals the explicit-score
/// reference; the layer reads its prefix both ways and the rest causally; a stream whose first piece is the prefix
/// equals the full forward; and a model never lets a scored position read the token it predicts.
/// </summary>
[Collection(TorchCollection.Name)]
public class PrefixMemoryTests
{
    static Equivalence.Leaves Leaves(long b, long t, long h, long dk, long dv, int seed)
    {
        var gen = new Generator((ulong)seed);
        var leaves = new Equivalence.Leaves();
        foreach (var (name, width) in new[] { ("q", dk), ("k", dk), ("ke", dk), ("v", dv), ("ve", dv) })
            leaves.Tensors[name] = (randn([b, t, h, width], float64, generator: gen) * 0.5).requires_grad_(true);
        return leaves;
    }

    /// <summary>The recurrent form: S^e, then the chunked linear-attention kernel started from it.</summary>
    static (Tensor O, Tensor State) Kernel(Equivalence.Leaves x, Tensor prefix, int chunk, KernelForm form)
    {
        var se = PrefixMemory.EncoderState(x["ke"]!, x["ve"]!, prefix);
        return MatrixKernels.Run(MatrixKernelKind.GatedLinear, form, new KernelInputs(x["q"]!, x["k"]!, x["v"]!, H0: se), chunk);
    }

    public static TheoryData<long, long, long, long[], int> Shapes => new()
    {
        { 37, 5, 3, [0, 37, 11], 16 },    // no prefix, the whole row, a prefix that ends inside a chunk; T not a multiple of 16
        { 64, 8, 8, [64, 1, 32], 16 },    // prefix ends on a chunk boundary; one-token prefix
        { 9, 4, 6, [3, 9, 0], 64 },       // one chunk longer than the row
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Chunk_and_step_forms_equal_the_explicit_scores(long t, long dk, long dv, long[] prefixes, int chunk)
    {
        using var scope = NewDisposeScope();
        var prefix = tensor(prefixes);
        using var x = Leaves(prefixes.Length, t, 2, dk, dv, seed: (int)t);
        var dO = randn([prefixes.Length, t, 2, dv], float64, generator: new Generator(3));
        var dS = randn([prefixes.Length, 2, dk, dv], float64, generator: new Generator(4));
        var reference = Equivalence.Run(x, l => PrefixMemory.Naive(l["q"]!, l["k"]!, l["v"]!, l["ke"]!, l["ve"]!, prefix), dO, dS);
        foreach (var form in new[] { KernelForm.Chunk, KernelForm.Step })
        {
            Equivalence.AssertClose(reference, Equivalence.Run(x, l => Kernel(l, prefix, chunk, form), dO, dS), 1e-10, $"fp64 {form}");
            using var x32 = x.To(float32);
            Equivalence.AssertClose(reference, Equivalence.Run(x32, l => Kernel(l, prefix, chunk, form), dO, dS), 1e-5, $"fp32 {form}");
        }
    }

    [Fact]
    public void Encoder_keys_beyond_the_prefix_get_no_gradient()
    {
        using var scope = NewDisposeScope();
        using var x = Leaves(2, 12, 2, 4, 4, seed: 1);
        var (o, _) = Kernel(x, tensor(new long[] { 5, 0 }), 8, KernelForm.Chunk);
        o.sum().backward();
        var grad = x["ke"]!.grad!;
        Assert.True(grad[0].narrow(0, 0, 5).abs().sum().item<double>() > 0, "the prefix's encoder keys are read");
        Assert.Equal(0, grad[0].narrow(0, 5, 7).abs().sum().item<double>());
        Assert.Equal(0, grad[1].abs().sum().item<double>());
    }

    static PrefixLinearAttention Layer(bool normalize)
    {
        TorchRuntime.Seed(5);
        var c = TinyModels.Config(MixerKind.PrefixLinearAttention,
            c => c with { Matrix = c.Matrix with { FeatureMap = FeatureMapKind.Taylor, Normalize = normalize }, ExpandK = 0.5 });
        var layer = new PrefixLinearAttention(c, c.Matrix);
        layer.to(float64);
        return layer;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_prefix_is_read_both_ways_and_the_rest_causally(bool normalize)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var layer = Layer(normalize);
        const long length = 12, prefixLength = 5;
        var x = randn([1, length, 16], float64, generator: new Generator(2));
        var prefix = tensor(new[] { prefixLength });
        var y = layer.Forward(x, null, prefix);
        for (long j = 0; j < length; j++)
        {
            var changed = x.clone();
            changed[0, j].add_(1.0);
            var moved = (layer.Forward(changed, null, prefix) - y).abs().amax([0, 2]);      // [T]: how far each output moved
            for (long i = 0; i < length; i++)
            {
                bool reads = j <= i || j < prefixLength;                     // its causal past, or any prefix token
                double by = moved[i].item<double>();
                Assert.True(reads == by > 1e-12, $"output {i} after changing token {j}: moved {by:E2}");
            }
        }
    }

    [Fact]
    public void Without_a_prefix_it_is_linear_attention()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var layer = Layer(normalize: true);
        var x = randn([2, 10, 16], float64, generator: new Generator(6));
        var none = layer.Forward(x, null, tensor(new long[] { 0, 0 }));
        Assert.True(Equivalence.RelativeRms(none, layer.forward(x)) <= 1e-12);
    }

    [Fact]
    public void A_stream_whose_first_piece_is_the_prefix_equals_the_full_forward()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(TinyModels.Config(MixerKind.PrefixLinearAttention));
        const long length = 19, prefixLength = 7;
        var tokens = TinyModels.Tokens(2, length);
        var full = model.Step(tokens, model.NewCache(), tensor(new[] { prefixLength, prefixLength }));
        using var cache = model.NewCache();
        var first = model.Step(tokens.narrow(1, 0, prefixLength), cache, tensor(new[] { prefixLength, prefixLength }));
        var pieces = new List<Tensor> { first };
        pieces.Add(model.Step(tokens.narrow(1, prefixLength, 4), cache));                  // a piece, then single tokens
        for (long t = prefixLength + 4; t < length; t++) pieces.Add(model.Step(tokens.narrow(1, t, 1), cache));
        double error = Equivalence.RelativeRms(cat(pieces, 1), full);
        Assert.True(error <= 1e-10, $"streamed vs full: {error:E2}");
        var differs = Equivalence.RelativeRms(model.forward(tokens), full);
        Assert.True(differs > 1e-3, $"the prefix changed nothing ({differs:E2})");
    }

    [Fact]
    public void A_prefix_after_the_first_piece_or_of_the_wrong_shape_is_refused()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(TinyModels.Config(MixerKind.PrefixLinearAttention));
        using var cache = model.NewCache();
        model.Step(TinyModels.Tokens(1, 4), cache);
        var late = Assert.Throws<ArgumentException>(() => model.Step(TinyModels.Tokens(1, 2), cache, tensor(new long[] { 2 })));
        Assert.Contains("first piece", late.Message);
        var shape = Assert.Throws<ArgumentException>(() => model.Step(TinyModels.Tokens(2, 3), model.NewCache(), tensor(new long[] { 2 })));
        Assert.Contains("[2]", shape.Message);
        var range = Assert.Throws<ArgumentException>(() => model.Step(TinyModels.Tokens(1, 3), model.NewCache(), tensor(new long[] { 4 })));
        Assert.Contains("[0, 3]", range.Message);
    }

    [Fact]
    public void The_prompt_runs_to_the_first_scored_position()
    {
        using var scope = NewDisposeScope();
        var mask = tensor(new[,]
        {
            { false, false, true, false, true }, { false, false, false, false, false }, { true, false, false, false, false },
        });
        Assert.Equal(new long[] { 3, 0, 1 }, LanguageModel.PromptLengths(mask).data<long>().ToArray());
    }

    [Fact]
    public void No_scored_position_reads_the_token_it_predicts()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var model = TinyModels.Build(TinyModels.Config(MixerKind.PrefixLinearAttention));
        Assert.True(model.ReadsPrefix);
        const long length = 16;
        var tokens = TinyModels.Tokens(1, length);
        var mask = zeros([1, length], @bool);
        foreach (long p in new long[] { 6, 9, 13 }) mask[0, p].fill_(true);
        var logits = model.ScoredLogits(tokens, mask);                                      // [3, V]
        foreach (var (row, p) in new[] { (0, 6L), (1, 9L), (2, 13L) })
        {
            var future = tokens.clone();
            future.narrow(1, p + 1, length - p - 1).fill_(0);                                     // every later token, its label included
            var again = model.ScoredLogits(future, mask);
            Assert.True((again[row] - logits[row]).abs().max().item<double>() == 0, $"scored position {p} read a later token");
        }
        var causal = model.ReadOut(model.Hidden(tokens), mask);                            // the same model, no prefix
        Assert.True((causal - logits).abs().max().item<double>() > 1e-6, "the prompt was not read as a prefix");
    }
}
