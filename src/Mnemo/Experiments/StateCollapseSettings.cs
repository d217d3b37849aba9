using Mnemo.Layers;

namespace Mnemo.Experiments;

/// <summary>
/// The state-collapse reproduction (Stuffed Mamba, docs/mechanisms.md#state-collapse-mitigations): which models train at which length
/// (<see cref="Training"/>, an extrapolation setting whose eval factors give the test lengths) and which
/// training-free mitigations are scored at every test length.
/// </summary>
public sealed record StateCollapseSettings
{
    public required string Name { get; init; }

    /// <summary>Mixers, task, training length L, evaluation factors, learning rates and steps.</summary>
    public required ExtrapolationSettings Training { get; init; }

    /// <summary>Forget-more multipliers λ on the log-decay, one mitigation each.</summary>
    public double[] ForgetScales { get; init; } = [2, 4];

    /// <summary>State-norm mitigations, one per margin m: τ per layer is m × the largest ‖S_t‖_F seen at t ≤ L (m = 1
    /// caps only growth beyond anything seen in training; m &lt; 1 also bites within it).</summary>
    public double[] NormCapMargins { get; init; } = [1, 0.5];

    /// <summary>Examples at L whose state norms set τ.</summary>
    public int NormExamples { get; init; } = 64;

    /// <summary>Examples at the longest length whose per-position norms are reported and plotted.</summary>
    public int NormTraceExamples { get; init; } = 16;

    /// <summary>r of the sliding-window mitigation; 0 = the training length.</summary>
    public int Window { get; init; }

    public int WindowTokens => Window > 0 ? Window : Training.TrainLength;

    /// <summary>
    /// Mamba-2 and Gated DeltaNet (d_model 64, 2 layers, 2 heads, no MLP) trained on passkey at L = 64 for up to
    /// 300 steps, tested at 64 … 1024 on 100 examples per length. A few minutes per model on 2 cores.
    /// </summary>
    public static StateCollapseSettings Default => new()
    {
        Name = "default",
        Training = new ExtrapolationSettings
        {
            Name = "collapse",
            Mixers = [MixerKind.Mamba2, MixerKind.GatedDeltaNet],
            Tasks = [ExtrapolationTask.Passkey],
            TrainLength = 64,
            EvalFactors = [1, 2, 4, 8, 16],
            TrainExamples = 8000,
            ValidationExamples = 200,
            EvalExamples = 100,
            LearningRates = [3e-3],
            Steps = 300,
        },
    };

    /// <summary>Test-sized: seconds, a plumbing check.</summary>
    public static StateCollapseSettings Quick => new()
    {
        Name = "quick",
        Training = ExtrapolationSettings.Quick with
        {
            Name = "collapse-quick",
            Mixers = [MixerKind.Mamba2, MixerKind.GatedDeltaNet],
            Tasks = [ExtrapolationTask.Passkey],
            EvalFactors = [1, 2, 4],
            LearningRates = [1e-2],
        },
        NormExamples = 8,
        NormTraceExamples = 4,
    };
}
