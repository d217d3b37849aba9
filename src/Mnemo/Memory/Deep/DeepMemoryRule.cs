namespace Mnemo.Memory.Deep;

/// <summary>
/// A point in the Miras design space: what the memory minimises (<see cref="Objective"/>), how it forgets
/// (<see cref="Retention"/>), how it learns (<see cref="Learner"/>) and over how many recent tokens each step's
/// loss is summed (the Omega rule's window c; 1 = the current token only). The memory's architecture
/// (<see cref="MemoryMlp"/>) and the chunk size are chosen alongside. Named rules live in Rules/.
/// </summary>
public sealed record DeepMemoryRule(string Name, Objective Objective, Retention Retention, Learner Learner, int Window = 1)
{
    /// <summary>Every named rule, by its CLI / config name.</summary>
    public static IReadOnlyDictionary<string, DeepMemoryRule> Named { get; } = new[]
    {
        Rules.Titans.Rule, Rules.Moneta.Rule, Rules.Yaad.Rule, Rules.Memora.Rule, Rules.OmegaNet.Rule, Rules.Atlas.Rule,
    }.ToDictionary(r => r.Name);

    /// <summary>The same rule with another Omega window (OmegaNet and ATLAS let the model choose c).</summary>
    public DeepMemoryRule WithWindow(int window) => window < 1
        ? throw new MnemoException($"the Omega window must be at least 1 token, got {window}")
        : this with { Window = window };
}
