using Mnemo.Memory.Aaren;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>Aaren's three forms: the prefix scan, the step loop and plain softmax attention over each prefix.</summary>
public class AarenScanTests
{
    /// <summary>Scores s [B, T, H] (times <paramref name="scale"/>, plus a ramp that makes later scores dominate) and
    /// values v [B, T, H, Dv].</summary>
    static (Tensor S, Tensor V) Inputs(long b, long t, long h, long dv, double scale, double ramp, int seed, ScalarType dtype)
    {
        var gen = new Generator((ulong)seed);
        var s = randn([b, t, h], float64, generator: gen) * scale + arange(t, dtype: float64).view(1, t, 1) * ramp;
        var v = randn([b, t, h, dv], float64, generator: gen);
        return (s.to(dtype).requires_grad_(true), v.to(dtype).requires_grad_(true));
    }

    /// <summary>Gradients of o·dO w.r.t. s and v; with one token o = v does not depend on s, whose gradient is then 0.</summary>
    static Tensor[] Grad(Tensor o, Tensor s, Tensor v, Tensor dO)
    {
        var g = torch.autograd.grad([o], [s, v], [dO], allow_unused: true);
        return [g[0].IsInvalid ? zeros_like(s) : g[0], g[1]];
    }

    /// <summary>
    /// ∂s's error against the natural scale of its terms. ∂s_i = Σ_{t≥i} p_ti (v_i − o_t)·dO_t is a difference of
    /// nearly equal numbers wherever one token dominates a prefix (p ≈ 1, o ≈ v_i): with scores 50 apart the exact
    /// gradient is ~e⁻⁵⁰ while every form rounds its terms at ~|v||dO|·u. So the error is measured against
    /// max(RMS(∂s), √Dv · RMS(v) · RMS(dO)); where no token dominates, RMS(∂s) is that large anyway.
    /// </summary>
    static double ScoreGradientError(Tensor actual, Tensor expected, Tensor v, Tensor dO)
    {
        double Rms(Tensor x) => x.detach().to(float64).square().mean().sqrt().item<double>();
        double terms = Math.Sqrt(v.shape[^1]) * Rms(v) * Rms(dO);
        return Rms(actual.to(float64) - expected.to(float64)) / Math.Max(Rms(expected), terms);
    }

    /// <summary>Lengths T, score scales and score ramps.</summary>
    static readonly (long T, double Scale, double Ramp)[] Shapes =
    [
        (1, 1, 0),          // one token
        (7, 1, 0),          // T not a power of two
        (33, 3, 0),         // T one past a power of two
        (16, 300, 0),       // scores far apart: e^{s} overflows fp64 without the running max
        (20, 1, 50),        // every token outscores the ones before it by ~50: a global max would underflow the early prefixes
        (20, 1, -50),       // every token is outscored by the first
    ];

    public static TheoryData<long, double, double, bool> ShapesAndPrecisions()
    {
        var data = new TheoryData<long, double, double, bool>();
        foreach (var (t, scale, ramp) in Shapes)
            foreach (bool fp32 in new[] { false, true })
                data.Add(t, scale, ramp, fp32);
        return data;
    }

    /// <summary>
    /// The scan and the step loop (and in fp32 the naive form too) against plain softmax over each prefix in fp64:
    /// outputs and both gradients within 1e-10 in fp64 and 1e-5 in fp32. Every exponent is ≤ 0 and every normaliser
    /// ≥ 1, so rounding stays at the precision's level whatever the scores' range.
    /// </summary>
    [Theory]
    [MemberData(nameof(ShapesAndPrecisions))]
    public void Scan_step_and_plain_softmax_agree_in_outputs_and_gradients(long t, double scale, double ramp, bool fp32)
    {
        using var scope = NewDisposeScope();
        var (dtype, tolerance, seed) = fp32 ? (float32, 1e-5, 3) : (float64, 1e-10, 1);
        var (s, v) = Inputs(2, t, 3, 5, scale, ramp, seed, float64);
        var dO = randn([2, t, 3, 5], float64, generator: new Generator((ulong)seed + 1));
        var reference = AarenScan.Naive(s, v);
        var expected = Grad(reference, s, v, dO);
        var (sx, vx) = fp32 ? (s.detach().to(float32).requires_grad_(true), v.detach().to(float32).requires_grad_(true)) : (s, v);
        var forms = new List<(string, Tensor)> { ("scan", AarenScan.Scan(sx, vx).O), ("step", AarenScan.StepLoop(sx, vx).O) };
        if (fp32) forms.Add(("naive", AarenScan.Naive(sx, vx)));
        foreach (var (name, o) in forms)
        {
            Assert.Equal(dtype, o.dtype);
            Assert.True(Equivalence.RelativeRms(o.to(float64), reference) <= tolerance, $"{name} T={t}: outputs");
            var g = Grad(o, sx, vx, dO.to(dtype));
            double es = ScoreGradientError(g[0], expected[0], v, dO);
            Assert.True(es <= tolerance, $"{name} T={t}: ∂s error {es:E2}");
            Assert.True(Equivalence.RelativeRms(g[1].to(float64), expected[1]) <= tolerance, $"{name} T={t}: ∂v");
            Assert.True(g[0].isfinite().all().item<bool>() && g[1].isfinite().all().item<bool>(), $"{name} T={t}: finite");
        }
    }

    [Fact]
    public void Two_calls_carrying_the_state_equal_one_call_in_both_recurrent_forms()
    {
        using var scope = NewDisposeScope();
        var (s, v) = Inputs(2, 19, 2, 4, 2, 0, seed: 5, float64);
        var (whole, end) = AarenScan.Scan(s, v);
        foreach (long split in new long[] { 1, 8, 13 })
        {
            var first = AarenScan.Scan(s.narrow(1, 0, split), v.narrow(1, 0, split));
            var second = AarenScan.Scan(s.narrow(1, split, 19 - split), v.narrow(1, split, 19 - split), first.State);
            var stepped = AarenScan.StepLoop(s.narrow(1, split, 19 - split), v.narrow(1, split, 19 - split), first.State);
            Assert.True(Equivalence.RelativeRms(cat([first.O, second.O], 1), whole) <= 1e-12, $"split {split}: scan");
            Assert.True(Equivalence.RelativeRms(cat([first.O, stepped.O], 1), whole) <= 1e-12, $"split {split}: step");
            Assert.True(Equivalence.RelativeRms(second.State.W / second.State.U.unsqueeze(-1), end.W / end.U.unsqueeze(-1)) <= 1e-12,
                $"split {split}: final read");
            Assert.True(Equivalence.RelativeRms(second.State.M, end.M) <= 1e-14, $"split {split}: running max");
        }
    }

    [Fact]
    public void The_state_is_three_numbers_per_head_and_value_channel_whatever_the_length()
    {
        using var scope = NewDisposeScope();
        foreach (long t in new long[] { 4, 400 })
        {
            var (s, v) = Inputs(2, t, 3, 5, 1, 0, seed: 6, float32);
            var state = AarenScan.Scan(s, v).State;
            Assert.Equal([2L, 3], state.M.shape);
            Assert.Equal([2L, 3], state.U.shape);
            Assert.Equal([2L, 3, 5], state.W.shape);
        }
    }

    [Fact]
    public void A_streaming_aaren_model_holds_the_state_its_config_reports()
    {
        using var scope = NewDisposeScope();
        var c = Mnemo.Tests.Models.TinyModels.Config(Mnemo.Layers.MixerKind.Aaren);
        var model = Mnemo.Tests.Models.TinyModels.Build(c, fp64: false);
        using var cache = model.NewCache();
        using var noGrad = no_grad();
        foreach (int t in new[] { 5, 1, 30 }) model.Step(Mnemo.Tests.Models.TinyModels.Tokens(1, t), cache);
        Assert.Equal(2 * (2 + 8), c.StateFloatsPerLayer(10_000));                  // H = 2 heads of Dh = 8
        Assert.All(cache.Layers, l => Assert.Equal(c.StateFloatsPerLayer(36) * sizeof(float), l.Bytes));
    }

    [Fact]
    public void Mismatched_shapes_are_one_error_naming_both()
    {
        var e = Assert.Throws<MnemoException>(() => AarenScan.Scan(zeros(2, 5, 3), zeros(2, 4, 3, 8)));
        Assert.Contains("[2, 5, 3]", e.Message);
        Assert.Contains("[2, 4, 3, 8]", e.Message);
    }
}
