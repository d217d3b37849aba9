using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using Mnemo.Tests.Models;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Runtime;

/// <summary>training.precision bf16: the projection draws what nn.Linear drew, fp32 computes exactly what it did, and
/// bf16 changes a model's numbers by what bf16 rounding predicts, whichever CPU kernel runs the products.</summary>
[Collection(TorchCollection.Name)]
public class MixedPrecisionTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_projection_draws_the_weights_nn_Linear_draws_from_the_same_seed(bool hasBias)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(3);
        var linear = nn.Linear(7, 5, hasBias);
        TorchRuntime.Seed(3);
        var projection = new Projection(7, 5, hasBias);
        Assert.True(projection.Weight.eq(linear.weight!).all().item<bool>(), "weight");
        if (hasBias) Assert.True(projection.Bias!.eq(linear.bias!).all().item<bool>(), "bias");
        else Assert.Null(projection.Bias);
        Assert.Equal(linear.named_parameters().Select(p => p.name), projection.named_parameters().Select(p => p.name));
        var x = randn(3, 7);
        Assert.True(projection.forward(x).eq(linear.forward(x)).all().item<bool>(), "fp32 output");
    }

    [Fact]
    public void The_scope_is_restored_on_exit_and_leaves_fp64_alone()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(Precision.Fp32, MixedPrecision.Current);
        var (a64, b64) = (randn(4, 8, dtype: float64), randn(8, 3, dtype: float64));
        using (MixedPrecision.Enter(Precision.Bf16))
        {
            using (MixedPrecision.Enter(Precision.Fp32)) Assert.Equal(Precision.Fp32, MixedPrecision.Current);
            Assert.Equal(Precision.Bf16, MixedPrecision.Current);
            Assert.True(MixedPrecision.MatMul(a64, b64).eq(a64.matmul(b64)).all().item<bool>(), "fp64 products keep fp64");
            var y = MixedPrecision.MatMul(a64.to(float32), b64.to(float32));
            Assert.Equal(ScalarType.Float32, y.dtype);                           // results come back in fp32
            var rounded = a64.to(bfloat16).to(float64).matmul(b64.to(bfloat16).to(float64));
            // bf16 operands, fp32 accumulation, the result rounded to bf16 once: within bf16's half-ulp of the exact
            // product of the rounded operands.
            Assert.True(Equivalence.RelativeRms(y, rounded) <= Math.Pow(2, -8), $"{Equivalence.RelativeRms(y, rounded)}");
        }
        Assert.Equal(Precision.Fp32, MixedPrecision.Current);
    }

    /// <summary>
    /// Every output and gradient of a bf16 model against the fp64 model with the same weights, next to the fp32 model's
    /// error. bf16 keeps 8 significant bits (unit roundoff u = 2⁻⁸ ≈ 3.9e-3); each product rounds its operands and its
    /// result, so one product is off by ~u, and a 2-layer model's logits and gradients pass through ~10 of them. Measured
    /// (2026-12-05, AMD EPYC with AVX512-BF16), the worst tensor's relative RMS: Mamba-2 8.0e-3, attention 8.8e-3, Gated
    /// DeltaNet 1.8e-2 (its kernel's products included). The bound, 8u = 3.1e-2, depends only on bf16's rounding of the
    /// operands and results, which is the same on every CPU; the kernels differ only in the order of the fp32 sums
    /// (~1e-7). Titans (its deep kernel stays fp32; only projections and head are bf16) reached 4.3e-2 in one tensor,
    /// the gradient of the second layer's forget-gate bias: one number per head summed over every token, whose terms
    /// cancel, so its relative error exceeds a single product's (its other tensors: 0.8e-2–1.9e-2); it is bounded by 16u.
    /// The lower bound 1e-4 fails if the scope computed nothing in bf16.
    /// </summary>
    [Theory]
    [InlineData(MixerKind.Attention, 8, true)]
    [InlineData(MixerKind.Attention, 8, false)]
    [InlineData(MixerKind.GatedDeltaNet, 8)]
    [InlineData(MixerKind.Mamba2, 8)]
    [InlineData(MixerKind.Titans, 16)]
    public void A_bf16_model_is_within_bf16_rounding_of_the_fp64_model(
        MixerKind mixer, int boundInUnitRoundoffs, bool bf16Attention = false)
    {
        using var scope = NewDisposeScope();
        var config = TinyModels.Config(mixer, c => c with { DModel = 64, NumHeads = 2 });
        var model = TinyModels.Build(config, fp64: true);
        var x = TinyModels.Tokens(2, 37);
        Tensor[] Run()
        {
            model.zero_grad();
            var logits = model.forward(x);
            (logits.log_softmax(-1).select(-1, 3)).mean().backward();
            return [logits.detach().to(float64), .. model.parameters().Select(p => p.grad!.to(float64))];
        }
        var reference = Run();
        model.to(float32);
        var fp32 = Run();
        Tensor[] bf16;
        using (MixedPrecision.Enter(Precision.Bf16, bf16Attention)) bf16 = Run();
        double worst16 = 0, worst32 = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            worst16 = Math.Max(worst16, Equivalence.RelativeRms(bf16[i], reference[i]));
            worst32 = Math.Max(worst32, Equivalence.RelativeRms(fp32[i], reference[i]));
        }
        Assert.True(worst32 <= 1e-5, $"{mixer} fp32: {worst32:E2}");
        Assert.True(worst16 <= boundInUnitRoundoffs * Math.Pow(2, -8),
            $"{mixer} bf16: worst tensor {worst16:E2} > {boundInUnitRoundoffs}u");
        Assert.True(worst16 >= 1e-4, $"{mixer} bf16: worst tensor {worst16:E2}: nothing ran in bf16");
    }

    /// <summary>libtorch's attention kernel takes bf16 operands only when the scope says so (by default: with AMX), never
    /// under fp32, and the setting is restored with the precision.</summary>
    [Fact]
    public void The_attention_kernel_takes_bf16_operands_only_where_the_scope_says()
    {
        using var scope = NewDisposeScope();
        var q = randn(2, 3, 4, 8);
        using (MixedPrecision.Enter(Precision.Bf16, bf16Attention: true))
        {
            Assert.Equal(ScalarType.BFloat16, MixedPrecision.AttentionOperand(q).dtype);
            using (MixedPrecision.Enter(Precision.Bf16, bf16Attention: false))
                Assert.Equal(ScalarType.Float32, MixedPrecision.AttentionOperand(q).dtype);
            using (MixedPrecision.Enter(Precision.Fp32, bf16Attention: true))
                Assert.Equal(ScalarType.Float32, MixedPrecision.AttentionOperand(q).dtype);
            Assert.True(MixedPrecision.Bf16Attention);
        }
        Assert.False(MixedPrecision.Bf16Attention);
        using (MixedPrecision.Enter(Precision.Bf16))
            Assert.Equal(CpuFeatures.Read().AmxBf16, MixedPrecision.Bf16Attention);
    }

    [Fact]
    public void Training_precision_is_named_as_configs_name_it()
    {
        var config = RunConfig.Parse("""{ "task": { "kind": "mqar" }, "training": { "precision": "bf16" } }""", "inline");
        Assert.Equal(Precision.Bf16, config.Training.Precision);
        const string fp16 = """{ "task": { "kind": "mqar" }, "training": { "precision": "fp16" } }""";
        var e = Assert.ThrowsAny<Exception>(() => RunConfig.Parse(fp16, "inline"));
        Assert.Contains("training.precision", e.Message);
    }
}
