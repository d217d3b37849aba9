using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>The update rule of each memory in a mixture of memories.</summary>
public enum MomRule
{
    /// <summary>Gated DeltaNet (the paper's choice): decay from a_proj, A_log, dt_bias; β from b_proj.</summary>
    GatedDeltaNet,
    /// <summary>DeltaNet: β from b_proj, no decay.</summary>
    DeltaNet,
    /// <summary>Gated linear attention with Gated DeltaNet's scalar decay per head; no β.</summary>
    GatedLinear,
}

/// <summary>model.mom: the routing of a mixture of memories (docs/mechanisms.md#mixture-of-memories); its memories
/// are matrix memories and take their kernel settings from model.matrix.</summary>
public sealed record MixtureConfig : IValidatedConfig
{
    [Help("memories per layer"), Range(1, 64)] public int NumMemories { get; init; } = 4;
    [Help("memories each token is routed to (at most num_memories)"), Range(1, 64)] public int TopK { get; init; } = 2;
    [Help("add a memory that every token writes to")] public bool SharedMemory { get; init; } = true;
    [Help("update rule of every memory: gated_delta_net, delta_net or gated_linear")]
    public MomRule Rule { get; init; } = MomRule.GatedDeltaNet;
    [Help("weight of the router's load-balancing loss in training"), Range(0, 100)]
    public double RouterAuxLossCoef { get; init; } = 0.01;

    public IEnumerable<(string, string)> Validate()
    {
        if (TopK > NumMemories) yield return ("top_k", $"routes each token to {TopK} memories but num_memories is {NumMemories}");
    }
}
