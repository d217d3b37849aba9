namespace Mnemo.Memory.Matrix;

/// <summary>The four matrix-memory rules that can be run by name (`mnemo kernel --rule NAME`).</summary>
public enum KernelRule
{
    /// <summary>Linear attention: the gated linear kernel with no gate.</summary>
    Linear,
    /// <summary>The gated linear kernel with a scalar ([B, T, H]) or per-channel ([B, T, H, Dk]) log-gate g.</summary>
    GatedLinear,
    /// <summary>DeltaNet: the delta kernel with β and no gate.</summary>
    Delta,
    /// <summary>Gated DeltaNet and KDA: the delta kernel with β and a scalar ([B, T, H]) or per-channel ([B, T, H, Dk])
    /// log-gate g.</summary>
    GatedDelta,
}

/// <summary>Names of rules and forms as the command line spells them, and what each rule takes.</summary>
public static class KernelRules
{
    /// <summary>Rule names, in the order of <see cref="KernelRule"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["linear", "gated_linear", "delta", "gated_delta"];

    /// <summary>Form names, in the order of <see cref="KernelForm"/>.</summary>
    public static IReadOnlyList<string> FormNames { get; } = ["naive", "step", "chunk"];

    public static string Name(this KernelRule rule) => Names[(int)rule];

    public static string Name(this KernelForm form) => FormNames[(int)form];

    public static KernelRule ParseRule(string name) =>
        (KernelRule)IndexOf(Names, name, "rule");

    public static KernelForm ParseForm(string name) =>
        (KernelForm)IndexOf(FormNames, name, "form");

    public static MatrixKernelKind Kind(this KernelRule rule) =>
        rule is KernelRule.Linear or KernelRule.GatedLinear ? MatrixKernelKind.GatedLinear : MatrixKernelKind.Delta;

    public static bool TakesGate(this KernelRule rule) => rule is KernelRule.GatedLinear or KernelRule.GatedDelta;

    public static bool TakesBeta(this KernelRule rule) => rule.Kind() == MatrixKernelKind.Delta;

    static int IndexOf(IReadOnlyList<string> names, string name, string what)
    {
        int i = Runtime.Names.Find(names, name);
        return i >= 0 ? i : throw Runtime.Names.Unknown(what, name, names);
    }
}
