using Mnemo.IO;

namespace Mnemo.Layers;

/// <summary>model.synaptic: the synaptic_resonance mixer (docs/mechanisms.md#synaptic-resonance).</summary>
public sealed record SynapticConfig
{
    [Help("add the resonance term α·ρ_t (how familiar the key is, from a decaying key trace) to the write relevance; " +
          "false = relevance from the input alone, and no key trace (the ablation)")]
    public bool Resonance { get; init; } = true;
}
