using Mnemo.Experiments;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Models;

/// <summary>
/// Recoding: with no steps it is the plain LSTM, a step lowers the signal it descends, surprisal recoding never lets a
/// prediction see the token it predicts, and the study's noise and grid.
/// </summary>
[Collection(TorchCollection.Name)]
public class RecodingLstmTests
{
    static (RecodingLstm Model, Tensor Inputs, Tensor Observed) Setup()
    {
        TorchRuntime.Seed(12);
        var model = new RecodingLstm(11, 8, 2);
        model.to(float64);
        var tokens = randint(11, [3, 9], generator: new Generator(4));
        return (model, tokens.narrow(1, 0, 8), tokens.narrow(1, 1, 8));
    }

    [Fact]
    public void Zero_steps_is_the_plain_lstm()
    {
        using var scope = NewDisposeScope();
        var (model, inputs, observed) = Setup();
        using var noGrad = no_grad();
        var pass = model.Recode(inputs, observed, new RecodingConfig { Steps = 0 });
        Assert.True(Equivalence.RelativeRms(pass.Logits, model.forward(inputs)) <= 1e-12);
    }

    [Theory]
    [InlineData(RecodingSignal.Surprisal)]
    [InlineData(RecodingSignal.Entropy)]
    public void A_correction_lowers_the_signal(RecodingSignal signal)
    {
        using var scope = NewDisposeScope();
        var (model, inputs, observed) = Setup();
        foreach (int steps in new[] { 1, 3 })
        {
            var pass = model.Recode(inputs, observed, new RecodingConfig { Signal = signal, Steps = steps, StepSize = 0.05 });
            Assert.True(pass.SignalAfter < pass.SignalBefore, $"{steps} steps: {pass.SignalBefore:F4} → {pass.SignalAfter:F4}");
        }
        Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.abs().max().item<double>() == 0, "parameters untouched"));
    }

    [Fact]
    public void Surprisal_recoding_scores_each_prediction_before_its_token_arrives()
    {
        using var scope = NewDisposeScope();
        var (model, inputs, observed) = Setup();
        var c = new RecodingConfig { Signal = RecodingSignal.Surprisal, Steps = 2, StepSize = 0.5 };
        var a = model.Recode(inputs, observed, c).Logits;
        var changed = observed.clone();
        changed[.., 4] = (changed[.., 4] + 1).remainder(11);                          // the token after input 4 differs
        var b = model.Recode(inputs, changed, c).Logits;
        Assert.True(a.narrow(1, 0, 5).allclose(b.narrow(1, 0, 5), 0, 0), "predictions up to and including position 4 are unchanged");
        Assert.False(a.narrow(1, 5, 3).allclose(b.narrow(1, 5, 3)), "later predictions start from the state it corrected");
    }

    [Fact]
    public void Noise_replaces_the_asked_share_of_bytes_with_characters_of_the_alphabet()
    {
        using var scope = NewDisposeScope();
        var clean = full([40, 100], 7L);
        Assert.True(RecodingStudy.Corrupt(clean, 0, [1, 2], 3).eq(clean).all().item<bool>(), "no noise: unchanged");
        var noisy = RecodingStudy.Corrupt(clean, 0.2, [1, 2], 3);
        double share = noisy.ne(clean).to(float64).mean().item<double>();
        Assert.InRange(share, 0.17, 0.23);
        Assert.True(noisy.eq(7).logical_or(noisy.eq(1)).logical_or(noisy.eq(2)).all().item<bool>(), "replacements come from the alphabet");
        Assert.True(noisy.eq(RecodingStudy.Corrupt(clean, 0.2, [1, 2], 3)).all().item<bool>(), "seeded");
    }

    [Fact]
    public void A_tiny_study_measures_every_point_of_the_grid()
    {
        var c = new RecodingStudyConfig
        {
            Corpus = "generated", Hidden = 8, Layers = 1, SeqLen = 16, Batch = 4, Steps = 5, Streams = 2, EvalLength = 12,
            Noise = [0, 0.1], StepSizes = [0.1, 1],
        };
        var run = RecodingStudy.Run(c, 1);
        Assert.Equal(2 * (1 + 2 * 2), run.Points.Length);
        Assert.All(run.Points, p => Assert.True(double.IsFinite(p.BitsPerByte) && p.BitsPerByte > 0));
        Assert.All(run.Points.Where(p => p.Signal != "none"),
            p => Assert.True(p.SignalAfter < p.SignalBefore, $"{p.Signal} α {p.StepSize}"));
    }

    [Fact]
    public void Bad_settings_name_the_field()
    {
        Assert.Contains("noise", Assert.Throws<MnemoException>(() => new RecodingStudyConfig { Noise = [1.5] }.Validate()).Message);
        Assert.Contains("step sizes", Assert.Throws<MnemoException>(() => new RecodingStudyConfig { StepSizes = [0] }.Validate()).Message);
        var e = Assert.Throws<MnemoException>(() => new RecodingStudyConfig { Corpus = "/nope.txt" }.Validate());
        Assert.Contains("no such file", e.Message);
    }
}
