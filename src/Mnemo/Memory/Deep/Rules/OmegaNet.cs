using Mnemo.Memory.Deep;

namespace Mnemo.Memory.Deep.Rules;

/// <summary>
/// OmegaNet (ATLAS, Behrouz et al. 2025): the Omega rule memorises a window of the last c tokens, each weighted by
/// an input-dependent gate γ_i ∈ [0, 1]: g_t = ∇ Σ_{i=t−c+1..t} γ_i ‖M(φ(k_i)) − v_i‖², with Titans' momentum and
/// forgetting. c = 1 and γ = 1 is Titans.
/// Decisions (ATLAS read through secondary sources): γ_i depends on token i only (not on the reading token t);
/// window tokens from before the chunk are differentiated again at the new chunk-start weights; default c = 4.
/// The polynomial / Taylor feature map φ is a layer option (DeepMemoryMixer), not part of the rule.
/// </summary>
public static class OmegaNet
{
    public static DeepMemoryRule Rule { get; } = new("omeganet", new L2Objective(), new DecayRetention(), new MomentumDescent(), Window: 4);
}
