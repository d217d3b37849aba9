using Mnemo.Memory.Deep.Rules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Titans MAG, memory as a gate (Behrouz et al. 2024, Eq. 26–28; docs/mechanisms.md#titans-architectures), mixer "titans_mag":
/// <code>
/// x̃ = [P ‖ x],   y = SWA*(x̃),   m = M(x̃),   o = out_norm(y) ⊙ σ(gate_norm(m))
/// </code>
/// SWA* is <see cref="Attention"/> with the model's window (0 = full causal) whose queries all see P's keys,
/// however far back (P is unrotated and not convolved); M is the Titans memory layer (<see cref="DeepMemoryMixer"/>)
/// run over x̃, so it starts each sequence having read P. Both branches are causal, so streaming is exact.
/// Attention's short convolutions are off: the memory branch has its own.
/// </summary>
public sealed class MemoryAsGate : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly Attention attention;
    readonly DeepMemoryMixer memory;
    readonly Parameter? persistent_memory;
    readonly BranchGate output_gate;

    /// <param name="c">the model's common dims</param>
    /// <param name="attentionConfig">model.attention, the attention branch</param>
    /// <param name="deep">model.deep, the memory branch</param>
    /// <param name="titans">model.titans</param>
    public MemoryAsGate(ModelConfig c, AttentionConfig attentionConfig, DeepMemoryConfig deep, TitansConfig titans)
        : base(nameof(MemoryAsGate))
    {
        attention = new Attention(c with { ShortConv = false }, attentionConfig);
        memory = new DeepMemoryMixer(c, deep, Titans.Rule);
        persistent_memory = PersistentPrefix.Create(c, titans);
        output_gate = new BranchGate(c.DModel, c.NormEps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <param name="x">[B, T, D]</param>
    /// <returns>[B, T, D]</returns>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long position = cache?.Position ?? 0;
        var attentionCache = cache?.Child("attention");
        if (attentionCache is not null) attentionCache.Position = position;
        var y = attention.Forward(x, attentionCache, persistent_memory);
        var m = PersistentPrefix.Run(persistent_memory, x, position, (input, at) =>
        {
            var memoryCache = cache?.Child("memory");
            if (memoryCache is not null) memoryCache.Position = at;
            return memory.Forward(input, memoryCache);
        });
        return output_gate.forward(y, m).MoveToOuterDisposeScope();
    }
}
