using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// The token mixer around a test-time-trained memory (Titans' LMM block, Miras' shared block): q, k, v projections
/// with short convolutions (SiLU), L2-normalised q and k (then ATLAS's optional feature map φ), the memory
/// (Memory/Deep: the named rule, an MLP of deep.depth layers with learned initial weights memory_init.l
/// [H, in, out]), a per-head output RMSNorm (gated by silu(g_proj x) only with model.output_gate), and o_proj.
/// Gates per token and head: θ = σ(lr_proj x)·deep.max_lr, η = σ(momentum_proj x), α = σ(forget_proj x),
/// γ = σ(window_proj x) (Omega), δ = softplus(delta_proj x) (Huber). With deep.gate_pooling = chunk, η and α read
/// the running mean of x over the current memory chunk so far (Titans pools per chunk; a causal running mean keeps
/// streaming exact).
/// </summary>
public sealed class DeepMemoryMixer : MemoryMixer
{
    readonly Projection lr_proj, forget_proj;
    readonly Projection? momentum_proj, window_proj, delta_proj;
    readonly ParameterList memory_init;
    readonly Parameter? feature_coefficients;

    readonly DeepMemoryRule _rule;
    readonly MemoryMlp _mlp;
    readonly int _chunk;
    readonly double _maxLr;
    readonly bool _pooled;
    readonly MemoryFeatureMapKind _featureMap;

    /// <param name="c">the model's common dims</param>
    /// <param name="deep">model.deep</param>
    /// <param name="rule">the named rule, before <paramref name="deep"/>'s overrides</param>
    // No output gate by default: fla's per-channel silu(g_proj x) starts at ≈ ±0.08 with a random sign per channel
    // and scrambles the read and the gradient that reaches the memory; without it Titans learns MQAR at small
    // budgets and passkey on every seed, and retains better at 8× and 16× (docs/deep-memories.md §2d, §5).
    public DeepMemoryMixer(ModelConfig c, DeepMemoryConfig deep, DeepMemoryRule rule) : base(rule.Name, c, outputGate: false)
    {
        _rule = deep.Configure(rule);
        _chunk = deep.ChunkSize;
        _maxLr = deep.MaxLr;
        _pooled = deep.GatePooling == GatePooling.Chunk;
        _featureMap = deep.FeatureMap;
        _mlp = deep.Mlp(KeyDim, ValueDim);

        lr_proj = new Projection(c.DModel, Heads);
        forget_proj = new Projection(c.DModel, Heads);
        using (no_grad()) forget_proj.Bias!.fill_(deep.ForgetBias);          // start remembering (-4: α ≈ 0.018)
        if (_rule.Learner.HasMomentum) momentum_proj = new Projection(c.DModel, Heads);
        if (_rule.Window > 1) window_proj = new Projection(c.DModel, Heads);
        if (_rule.Objective.NeedsDelta)
        {
            delta_proj = new Projection(c.DModel, Heads);
            // δ ≈ softplus(−3) = 0.05 at the start, below the norm of a fresh value (~0.1–1), so the robust branch —
            // what makes Yaad Yaad — is active from the first step and δ learns; a large initial δ makes every error
            // "small", the step plain ℓ2 (Titans without momentum), and δ's gradient exactly zero.
            using (no_grad()) delta_proj.Bias!.fill_(-3);
        }
        memory_init = new ParameterList(DeepKernels.InitialWeights(_mlp, Heads, zeroOutput: true, retention: _rule.Retention)
            .Select(w => new Parameter(w)).ToArray());
        if (_featureMap == MemoryFeatureMapKind.Taylor)
            feature_coefficients = nn.Parameter(tensor(MemoryFeatureMap.InitialCoefficients(_featureMap), float32));
        RegisterComponents();
    }

    /// <summary>Floats of memory state per layer and batch row a deep memory carries: weights, chunk-start weights and
    /// (learners with momentum) the momentum, per head; the Omega window's c − 1 keys and values on top.</summary>
    public static long StateFloats(ModelConfig c, DeepMemoryRule rule)
    {
        var mlp = c.Deep.Mlp(c.KeyHeadDim, c.ValueHeadDim);
        var configured = c.Deep.Configure(rule);
        return c.NumHeads * (mlp.Layers.Sum(s => s.In * s.Out) * (configured.Learner.HasMomentum ? 3 : 2) +
            (configured.Window - 1) * (mlp.KeyDim + c.ValueHeadDim + 2));
    }

    /// <summary>L2-normalised q and k (Titans), then φ. Unlike the matrix rules, q is not scaled by Dk^{−1/2}: a
    /// non-linear memory must be queried on the scale its keys were written at.</summary>
    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position)
    {
        var (qn, kn) = (nn.functional.normalize(q, p: 2, dim: -1, eps: 1e-6), nn.functional.normalize(k, p: 2, dim: -1, eps: 1e-6));
        if (_featureMap == MemoryFeatureMapKind.None) return (qn, kn);
        var a = feature_coefficients ?? tensor(MemoryFeatureMap.InitialCoefficients(_featureMap), qn.dtype);
        return (MemoryFeatureMap.Apply(qn, a), MemoryFeatureMap.Apply(kn, a));
    }

    protected override Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache)
    {
        long position = cache?.Position ?? 0;
        var pooled = _pooled ? ChunkMean(x, position, cache) : x;
        var inputs = new DeepInputs(q, k, v,
            Theta: lr_proj.forward(x).sigmoid() * _maxLr,
            Eta: momentum_proj?.forward(pooled).sigmoid(),
            Alpha: forget_proj.forward(pooled).sigmoid(),
            Gamma: window_proj?.forward(x).sigmoid(),
            Delta: delta_proj is null ? null : nn.functional.softplus(delta_proj.forward(x)),
            W0: memory_init.ToArray(),
            State: cache is null ? null : Load(cache, position));
        var clock = KernelClock.Begin();
        inputs = inputs with
        {
            Q = clock.In(q)!,
            K = clock.In(k)!,
            V = clock.In(v)!,
            Theta = clock.In(inputs.Theta)!,
            Eta = clock.In(inputs.Eta),
            Alpha = clock.In(inputs.Alpha),
            Gamma = clock.In(inputs.Gamma),
            Delta = clock.In(inputs.Delta),
            W0 = [.. inputs.W0!.Select(w => clock.In(w)!)],
        };
        // A depth-1 ℓ2 memory with chunks of one token is the gated delta rule: its chunk form is far faster than a
        // per-token loop and computes the same numbers (DeltaRuleCase).
        var (o, state) = DeltaRuleCase.TryRun(_rule, _mlp, inputs, _chunk)
            ?? (cache is null ? DeepKernel.Chunk(_rule, _mlp, inputs, _chunk) : DeepKernels.Continue(_rule, _mlp, inputs, _chunk));
        if (cache is not null) foreach (var (name, tensor) in state.Tensors()) cache.Set(name, tensor);
        return clock.Out(o);
    }

    /// <summary>
    /// Read-only retrieval h = M*(q) for x [B, T, D] → [B, T, D] (Titans MAC: the memory from before the segment,
    /// queried by the segment's tokens): q from x like <see cref="MemoryMixer.Forward"/>'s, read with the weights at the
    /// start of the current memory chunk (memory_init before the first token), through the same o_norm, gate and
    /// o_proj. Leaves the memory untouched; q's short convolution runs over x's stream with its own cache entry.
    /// </summary>
    public Tensor Retrieve(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], position = cache?.Position ?? 0;
        var q = q_proj.forward(x);
        if (q_conv1d is not null) q = q_conv1d.Forward(q, cache, "retrieve_q_conv");
        q = q.view(b, t, Heads, KeyDim);
        var (qf, _) = Features(q, q, position);                                 // [B, T, H, Dk']
        var state = cache is null ? null : Load(cache, position);
        // At a chunk boundary the running weights are the chunk-start weights (however the kernel stored them).
        IEnumerable<Tensor> start = state is null ? memory_init.Select(w => w.unsqueeze(0)) : state.Offset == 0 ? state.Weights
            : state.ChunkStart;
        var dtype = Chunks.ComputeType(qf);
        var weights = start.Select(w => _rule.Retention.Effective(w.to(dtype))).ToArray();     // [B|1, H, in, out]
        var h = _mlp.Apply(weights, qf.to(dtype).transpose(1, 2)).transpose(1, 2).to(x.dtype);  // [B, T, H, Dv]
        return Output(h, x).MoveToOuterDisposeScope();
    }

    /// <summary>The carried memory state, or null before the first token (the kernel then starts from memory_init).</summary>
    DeepState? Load(LayerCache cache, long position)
    {
        if (cache.Get("w0") is null) return null;
        var weights = Enumerable.Range(0, _mlp.Depth).Select(l => cache.Get($"w{l}")!).ToArray();
        var chunkStart = Enumerable.Range(0, _mlp.Depth).Select(l => cache.Get($"w{l}_chunk_start")!).ToArray();
        var momentum = _rule.Learner.HasMomentum ? Enumerable.Range(0, _mlp.Depth).Select(l => cache.Get($"s{l}")!).ToArray() : null;
        return new DeepState(weights, chunkStart, momentum, position % _chunk,
            cache.Get("window_k"), cache.Get("window_v"), cache.Get("window_gamma"), cache.Get("window_delta"));
    }

    /// <summary>
    /// x̄_t = mean of x over the tokens of t's memory chunk up to t (causal), [B, T, D]. A stream carries the sum over
    /// the unfinished chunk in the cache ("pool_sum").
    /// </summary>
    Tensor ChunkMean(Tensor x, long position, LayerCache? cache)
    {
        long t = x.shape[1];
        var carried = cache?.Get("pool_sum");                                   // Σ x over the unfinished chunk [B, 1, D]
        var pieces = new List<Tensor>();
        for (long start = 0; start < t;)
        {
            long offset = (position + start) % _chunk, n = Math.Min(_chunk - offset, t - start);
            var sums = x.narrow(1, start, n).cumsum(1);                         // [B, n, D]
            if (offset > 0 && carried is not null) sums = sums + carried.to(x.dtype);
            var counts = arange(offset + 1, offset + n + 1, x.dtype, x.device).view(1, n, 1);
            pieces.Add(sums / counts);
            carried = offset + n == _chunk ? null : sums.narrow(1, n - 1, 1);
            start += n;
        }
        if (cache is not null && carried is not null) cache.Set("pool_sum", carried);
        return cat(pieces, 1);
    }
}
