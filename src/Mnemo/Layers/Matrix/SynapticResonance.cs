using Mnemo.Memory.Matrix;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Synaptic resonance (Applegarth et al. 2025, arXiv 2502.10699, as Mnemo builds it: docs/mechanisms.md#synaptic-resonance),
/// mixer "synaptic_resonance": fast weights written with a relevance r_t = σ(r_proj x_t + α ρ_t), where the resonance ρ_t
/// is how familiar the key k_t is to a decaying key trace (<see cref="ResonanceMemory"/>). λ_h = σ(decay_h) per head,
/// L2-normalised q and k, the read gated by silu(g_proj x).
/// </summary>
public sealed class SynapticResonance : MemoryMixer, IMatrixMemoryLayer
{
    readonly Projection r_proj;
    readonly Parameter decay;
    readonly Parameter? resonance;
    readonly int _chunk;

    /// <inheritdoc/>
    public IMatrixKernel Kernel { get; set; } = DirectMatrixKernel.Instance;

    public SynapticResonance(ModelConfig c, MatrixMemoryConfig matrix, SynapticConfig synaptic)
        : base(nameof(SynapticResonance), c, outputGate: true)
    {
        _chunk = matrix.ChunkSize;
        r_proj = new Projection(c.DModel, c.NumHeads);
        // λ_h starts at RetNet's 1 − 2^{−5−h}: the key trace of head h remembers about 2^{5+h} tokens.
        var start = Enumerable.Range(0, c.NumHeads).Select(h => Math.Log(Math.Pow(2, 5 + h) - 1)).ToArray();   // σ⁻¹(λ_h)
        decay = nn.Parameter(tensor(start, dtype: ScalarType.Float32));
        if (synaptic.Resonance) resonance = nn.Parameter(ones(c.NumHeads));
        RegisterComponents();
    }

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => UnitNormFeatures(q, k);

    protected override Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache)
    {
        var inputs = new ResonanceInputs(q, k, v, r_proj.forward(x), resonance, nn.functional.logsigmoid(decay),
            cache?.Get("trace"), cache?.Get("state"));
        var (o, trace, state) = ResonanceMemory.Run(inputs,
            m => Kernel.Run(MatrixKernelKind.GatedLinear, m, _chunk, streaming: cache is not null));
        if (cache is not null)
        {
            cache.Set("state", state);
            if (trace is not null) cache.Set("trace", trace);
        }
        return o;
    }
}
