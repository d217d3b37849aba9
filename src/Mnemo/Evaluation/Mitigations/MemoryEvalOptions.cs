namespace Mnemo.Evaluation.Mitigations;

/// <summary>
/// Evaluation-time changes to a trained matrix memory, the training-free mitigations of Stuffed Mamba
/// (Chen et al. 2024; docs/mechanisms.md#state-collapse-mitigations), set on a model with
/// <see cref="MemoryEval.Apply(Models.LanguageModel, MemoryEvalOptions)"/>. The default changes nothing.
/// <list type="bullet">
/// <item><b>Forget more, remember less</b>: g_t ← λ g_t (λ ≥ 1: a_t = e^{λ g_t} decays faster) and v_t ← ρ v_t
/// (ρ ≤ 1 inserts less). λ acts only on rules with a decay (Mamba-2, GLA, RetNet, Gated DeltaNet).</item>
/// <item><b>State normalisation</b>: after each update S_t ← S_t / max(1, ‖S_t‖_F / τ) per head. This is a
/// recurrence the chunk form cannot express, so the step form runs while it is active.</item>
/// <item><b>Sliding window</b> of r tokens. Decay-only rules (gated linear kernel) use the state difference
/// S_(t−r,t] = S_t − (Π_{i=t−r+1..t} a_i) S_{t−r}, which is exact: the memory then reads only the last r tokens.
/// The delta rule's state is not a sum of per-token terms (each update depends on S), so there the window
/// restarts the state from zero: two states restarted every r tokens, r/2 apart, and each position reads the
/// older one, i.e. a state over the last r/2 … r tokens.</item>
/// </list>
/// </summary>
public sealed record MemoryEvalOptions
{
    /// <summary>λ ≥ 1 multiplies the log-decay g_t (1 = as trained).</summary>
    public double ForgetScale { get; init; } = 1;

    /// <summary>ρ ∈ (0, 1] multiplies the inserted value v_t (1 = as trained).</summary>
    public double InsertScale { get; init; } = 1;

    /// <summary>τ: cap on ‖S_t‖_F per head (null = off).</summary>
    public double? StateNormCap { get; init; }

    /// <summary>r: the memory sees only the last r tokens (null = off).</summary>
    public int? Window { get; init; }

    /// <summary>Record ‖S_t‖_F per head at every position (runs the step form).</summary>
    public bool RecordStateNorms { get; init; }

    public static MemoryEvalOptions None { get; } = new();

    /// <summary>True when the memory runs exactly as trained (recording aside).</summary>
    public bool ChangesNothing => ForgetScale == 1 && InsertScale == 1 && StateNormCap is null && Window is null;

    /// <summary>The step form is needed: state normalisation or recording of norms.</summary>
    public bool NeedsStepForm => StateNormCap is not null || RecordStateNorms;

    public void Validate()
    {
        if (!(ForgetScale > 0) || double.IsInfinity(ForgetScale))
            throw new MnemoException($"forget scale λ must be positive and finite, got {ForgetScale}");
        if (!(InsertScale > 0) || double.IsInfinity(InsertScale))
            throw new MnemoException($"insert scale must be positive and finite, got {InsertScale}");
        if (StateNormCap is { } tau && !(tau > 0)) throw new MnemoException($"state norm cap τ must be positive, got {tau}");
        if (Window is { } r && r < 2) throw new MnemoException($"window r must be at least 2 tokens, got {r}");
        if (Window is not null && NeedsStepForm)
            throw new MnemoException("the sliding window runs in the sequence form; " +
                "it does not combine with state normalisation or norm recording");
    }

    /// <summary>A short label for tables: "none", "λ=2", "τ=3.1", "r=64", …</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (ForgetScale != 1) parts.Add($"λ={ForgetScale:G3}");
        if (InsertScale != 1) parts.Add($"ρ={InsertScale:G3}");
        if (StateNormCap is { } tau) parts.Add($"τ={tau:G3}");
        if (Window is { } r) parts.Add($"r={r}");
        return parts.Count == 0 ? "none" : string.Join(" ", parts);
    }
}
