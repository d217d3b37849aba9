using Mnemo.IO;
using Mnemo.Layers;

namespace Mnemo.Evaluation.Mitigations;

/// <summary>
/// One named way to run a trained model's matrix memories at evaluation time (<see cref="MemoryEvalOptions"/>;
/// Stuffed Mamba's training-free mitigations, docs/mechanisms.md#state-collapse-mitigations). Every field left at
/// its default runs the memory as trained.
/// </summary>
public sealed record EvalVariant : IValidatedConfig
{
    [Help("the variant's name in results, tables and plots (e.g. \"forget λ=2\")")] public string Name { get; init; } = "";

    [Help("forget more: λ ≥ 1 multiplies the log-decay g_t (1 = as trained; acts on rules with a decay)")]
    [Range(1, 1e6)]
    public double ForgetScale { get; init; } = 1;

    [Help("remember less: ρ ∈ (0, 1] multiplies the inserted value v_t (1 = as trained)")]
    [Range(1e-6, 1)]
    public double InsertScale { get; init; } = 1;

    [Help("state normalisation: τ per layer = this multiple of the largest ‖S_t‖_F seen on the run's validation examples " +
        "(1 caps only growth beyond anything seen in training; null = off)")]
    public double? StateNormCap { get; init; }

    [Help("sliding window: the memory reads only the last r tokens (null = off)")] public int? Window { get; init; }

    public IEnumerable<(string, string)> Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) yield return ("name", "must be non-empty");
        if (StateNormCap is { } m && !(m > 0 && double.IsFinite(m))) yield return ("state_norm_cap", $"{m} must be positive and finite");
        if (Window is { } r && r < 2) yield return ("window", $"{r} must be at least 2 tokens");
        if (Window is not null && StateNormCap is not null)
            yield return ("window", "the sliding window runs the sequence form and does not combine with state_norm_cap");
    }

    /// <summary>Whether the variant runs the step form, so its state norms can be recorded (every variant but a window).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool Traceable => Window is null;

    /// <summary>The options of one layer, whose largest state norm on the validation examples is
    /// <paramref name="maxNormAtValidation"/> (the scale of <see cref="StateNormCap"/>).</summary>
    public MemoryEvalOptions Options(double maxNormAtValidation) => new()
    {
        ForgetScale = ForgetScale,
        InsertScale = InsertScale,
        StateNormCap = StateNormCap * maxNormAtValidation,
        Window = Window,
    };
}

/// <summary>
/// The evaluation variants of a sweep's final evaluation: every run's kept weights are scored on the final slices
/// once per variant, and the per-position state norms of its matrix memories are recorded as trained and under
/// each variant that runs the step form (Stuffed Mamba's state-collapse diagnostic).
/// </summary>
public sealed record EvalVariants : IValidatedConfig
{
    [Help("validation examples whose state norms give each layer's largest norm (the scale of state_norm_cap)")]
    [Range(1, 1_000_000)]
    public int NormExamples { get; init; } = 64;

    [Help("examples at the longest final-evaluation length whose per-position state norms are recorded (0 = none)")]
    [Range(0, 1_000_000)]
    public int TraceExamples { get; init; } = 16;

    [Help("the variants, in report order; each is scored on every final-evaluation slice")]
    public EvalVariant[] Variants { get; init; } = [];

    public IEnumerable<(string, string)> Validate()
    {
        if (Variants.Length == 0) yield return ("variants", "needs at least one variant");
        foreach (var dup in Variants.GroupBy(v => v.Name).Where(g => g.Count() > 1))
            yield return ("variants", $"the variant name \"{dup.Key}\" appears {dup.Count()} times");
    }

    /// <summary>The mixers whose memory is a matrix state, the ones <see cref="MemoryEvalOptions"/> act on.</summary>
    public static readonly MixerKind[] MatrixMemories =
    [
        MixerKind.Mamba2, MixerKind.Gla, MixerKind.Retnet, MixerKind.GatedDeltaNet, MixerKind.DeltaNet, MixerKind.LinearAttention,
        MixerKind.Kda, MixerKind.Gdn2, MixerKind.Comba,
    ];
}
