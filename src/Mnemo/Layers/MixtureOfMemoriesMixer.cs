using Mnemo.Memory.Matrix;
using Mnemo.Memory.Mixture;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Mixture-of-Memories token mixer (Du et al. 2025; docs/mechanisms.md#mixture-of-memories), names as fla's MomAttention: a router
/// (gate, d → M), a shared q_proj, per-memory k_proj.m, v_proj.m, b_proj.m, a_proj.m (the rule decides which of
/// b/a exist), shared A_log, dt_bias, the optional shared memory (shared_k, shared_v, shared_b, shared_a),
/// short convolutions q_conv1d, k_conv1d, v_conv1d shared by all memories, o_norm gated by silu(g_proj x), o_proj.
/// <para>
/// One deliberate difference from fla: the short convolutions run along the token sequence (per memory, on that
/// memory's projections of every token), where fla convolves each memory's routed sub-sequence. Along the sequence
/// each token sees its true predecessors — what a recall circuit needs — and the convolution is independent of
/// routing, so the kernel receives ordinary per-token inputs. It costs M dense key/value projections.
/// </para>
/// Streaming carries every memory's state, the shared memory's and the conv tails in the <see cref="LayerCache"/>.
/// In training the router's load-balancing loss (<see cref="Router.BalanceLoss"/>) is kept for <see cref="TakeAuxLoss"/>.
/// </summary>
public sealed class MixtureOfMemoriesMixer : nn.Module<Tensor, Tensor>, IStreamingMixer, IAuxiliaryLoss
{
    readonly Projection gate, q_proj, o_proj;
    readonly Projection? g_proj;                                                   // null when model.output_gate is false
    readonly ModuleList<Projection> k_proj, v_proj;
    readonly ModuleList<Projection>? b_proj, a_proj;
    readonly Projection? shared_k, shared_v, shared_b, shared_a;
    readonly Parameter? A_log, dt_bias;
    readonly ShortConvolution? q_conv1d, k_conv1d, v_conv1d;
    readonly GatedRMSNorm o_norm;

    readonly int _heads, _keyDim, _valueDim, _memories, _topK, _chunk;
    readonly MatrixKernelKind _kind;
    readonly bool _negativeEigenvalues;
    Tensor? _auxLoss;

    /// <param name="c">the model's common dims</param>
    /// <param name="matrix">model.matrix, for the memories' kernel (chunk_size) and decay (dt_min, dt_max)</param>
    /// <param name="mom">model.mom, the routing</param>
    public MixtureOfMemoriesMixer(ModelConfig c, MatrixMemoryConfig matrix, MixtureConfig mom) : base(nameof(MixtureOfMemoriesMixer))
    {
        (_heads, _keyDim, _valueDim, _memories, _topK, _chunk) = (c.NumHeads, c.KeyHeadDim, c.ValueHeadDim, mom.NumMemories, mom.TopK,
            matrix.ChunkSize);
        _kind = mom.Rule == MomRule.GatedLinear ? MatrixKernelKind.GatedLinear : MatrixKernelKind.Delta;
        _negativeEigenvalues = matrix.NegativeEigenvalues;
        bool gated = mom.Rule != MomRule.DeltaNet, delta = _kind == MatrixKernelKind.Delta;
        long keys = _heads * _keyDim, values = _heads * _valueDim;
        Projection Proj(long outputs) => new Projection(c.DModel, outputs, hasBias: false);
        ModuleList<Projection> PerMemory(long outputs) =>
            nn.ModuleList(Enumerable.Range(0, _memories).Select(_ => Proj(outputs)).ToArray());

        gate = Proj(_memories);
        q_proj = Proj(keys);
        k_proj = PerMemory(keys);
        v_proj = PerMemory(values);
        if (delta) b_proj = PerMemory(_heads);
        if (gated) a_proj = PerMemory(_heads);
        if (mom.SharedMemory)
        {
            (shared_k, shared_v) = (Proj(keys), Proj(values));
            if (delta) shared_b = Proj(_heads);
            if (gated) shared_a = Proj(_heads);
        }
        if (gated) (A_log, dt_bias) = MambaGate.Initial(_heads, matrix.DtMin, matrix.DtMax);
        if (c.ShortConv)
        {
            q_conv1d = new ShortConvolution(keys, c.ConvSize);
            k_conv1d = new ShortConvolution(keys, c.ConvSize);
            v_conv1d = new ShortConvolution(values, c.ConvSize);
        }
        if (c.OutputGate ?? true) g_proj = MemoryMixer.OutputGateProjection(c, values); // the paper gates the output
        o_norm = new GatedRMSNorm(_valueDim, c.NormEps);
        o_proj = new Projection(values, c.DModel, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var route = Router.Select(gate.forward(x), _topK);                   // [B, T, k] indices and weights
        if (training && cache is null) Keep(Router.BalanceLoss(route));

        var q = Convolve(q_conv1d, q_proj.forward(x), cache, "q_conv");     // [B, T, H·Dk]
        var k = Convolve(k_conv1d, Stack(k_proj, x), cache, "k_conv");      // [B, T, M, H·Dk]
        var v = Convolve(v_conv1d, Stack(v_proj, x), cache, "v_conv");      // [B, T, M, H·Dv]
        (var qh, var kh) = MatrixMemoryMixer.UnitNorm(q.view(b, t, _heads, _keyDim), k.view(b, t, _memories, _heads, _keyDim));
        var g = a_proj is null ? null : MambaGate.LogDecay(Stack(a_proj, x), A_log!, dt_bias!);   // [B, T, M, H]
        var beta = b_proj is null ? null : MatrixMemoryMixer.Beta(Stack(b_proj, x), _negativeEigenvalues);     // [B, T, M, H]

        KernelInputs? shared = null;
        if (shared_k is not null)
        {
            var sk = Convolve(k_conv1d, shared_k.forward(x), cache, "shared_k_conv");
            var sv = Convolve(v_conv1d, shared_v!.forward(x), cache, "shared_v_conv");
            var sg = shared_a is null ? null : MambaGate.LogDecay(shared_a.forward(x), A_log!, dt_bias!);
            var (_, skh) = MatrixMemoryMixer.UnitNorm(qh, sk.view(b, t, _heads, _keyDim));
            var sb = shared_b is null ? null : MatrixMemoryMixer.Beta(shared_b.forward(x), _negativeEigenvalues);
            shared = new KernelInputs(qh, skh, sv.view(b, t, _heads, _valueDim), sg, sb, cache?.Get("shared_state"));
        }
        var inputs = new MixtureInputs(qh, kh, v.view(b, t, _memories, _heads, _valueDim), g, beta, route.Indices, route.Weights,
            cache?.Get("states"), shared);
        var result = cache is null
            ? MixtureOfMemories.Run(_kind, KernelForm.Chunk, inputs, _chunk)
            : MixtureOfMemories.Continue(_kind, inputs, _chunk);
        if (cache is not null)
        {
            cache.Set("states", result.States);
            if (result.SharedState is not null) cache.Set("shared_state", result.SharedState);
        }

        var y = o_norm.forward(result.O, g_proj?.forward(x).view(b, t, _heads, _valueDim)).reshape(b, t, _heads * _valueDim);
        return o_proj.forward(y).MoveToOuterDisposeScope();
    }

    public Tensor? TakeAuxLoss()
    {
        var loss = _auxLoss;
        _auxLoss = null;
        return loss;
    }

    /// <summary>Keeps the latest training forward's balance loss outside every dispose scope (the taker owns it).</summary>
    void Keep(Tensor loss)
    {
        _auxLoss?.Dispose();
        _auxLoss = loss.DetachFromDisposeScope();
    }

    /// <summary>Each memory's projection of x [B, T, D] → [B, T, M, out].</summary>
    static Tensor Stack(ModuleList<Projection> perMemory, Tensor x) => stack(perMemory.Select(p => p.forward(x)).ToArray(), 2);

    /// <summary>
    /// The short convolution along the sequence, on [B, T, C] or per memory on [B, T, M, C] (memories folded into
    /// the batch, so the cache entry holds a tail per memory); without convolutions x as it is (as the other mixers).
    /// </summary>
    static Tensor Convolve(ShortConvolution? conv, Tensor x, LayerCache? cache, string key)
    {
        if (conv is null) return x;
        if (x.dim() == 3) return conv.Forward(x, cache, key);
        long b = x.shape[0], t = x.shape[1], m = x.shape[2], c = x.shape[3];
        var folded = x.transpose(1, 2).reshape(b * m, t, c);                 // [B·M, T, C]
        return conv.Forward(folded, cache, key).view(b, m, t, c).transpose(1, 2);
    }
}
