using Mnemo.Memory.Deep.Rules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Titans MAL, memory as a layer (Behrouz et al. 2024, Eq. 29–31; docs/mechanisms.md#titans-architectures), mixer "titans_mal":
/// <code>
/// x̃ = [P ‖ x],   y = M(x̃),   o = SWA(y)
/// </code>
/// M is the Titans memory layer (<see cref="DeepMemoryMixer"/>), SWA is <see cref="Attention"/> with the model's
/// window (0 = full causal) over the whole of y, P's positions included (they slide out of a window like any token).
/// Attention's short convolutions are off: the memory has its own.
/// </summary>
public sealed class MemoryAsLayer : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly DeepMemoryMixer memory;
    readonly Attention attention;
    readonly Parameter? persistent_memory;

    /// <param name="c">the model's common dims</param>
    /// <param name="attentionConfig">model.attention</param>
    /// <param name="deep">model.deep, the memory</param>
    /// <param name="titans">model.titans</param>
    public MemoryAsLayer(ModelConfig c, AttentionConfig attentionConfig, DeepMemoryConfig deep, TitansConfig titans)
        : base(nameof(MemoryAsLayer))
    {
        memory = new DeepMemoryMixer(c, deep, Titans.Rule);
        attention = new Attention(c with { ShortConv = false }, attentionConfig);
        persistent_memory = PersistentPrefix.Create(c, titans);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <param name="x">[B, T, D]</param>
    /// <returns>[B, T, D]</returns>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        return PersistentPrefix.Run(persistent_memory, x, cache?.Position ?? 0, (input, at) =>
        {
            LayerCache? memoryCache = cache?.Child("memory"), attentionCache = cache?.Child("attention");
            if (cache is not null) memoryCache!.Position = attentionCache!.Position = at;
            return attention.Forward(memory.Forward(input, memoryCache), attentionCache);
        }).MoveToOuterDisposeScope();
    }
}
