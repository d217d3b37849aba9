using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// Inputs of a deep-memory call in fla's layout: q, k [B, T, H, Dk], v [B, T, H, Dv]; per token and head
/// [B, T, H]: θ learning rate, η momentum, α forgetting (probabilities, used as given; η is ignored by learners
/// without momentum, α absent = no forgetting), γ Omega-window gates (absent = 1), δ Huber thresholds.
/// The memory starts from <paramref name="State"/> when given, else from the weights W0 (each [H, in, out]).
/// </summary>
public sealed record DeepInputs(Tensor Q, Tensor K, Tensor V, Tensor Theta, Tensor? Eta = null, Tensor? Alpha = null,
    Tensor? Gamma = null, Tensor? Delta = null, IReadOnlyList<Tensor>? W0 = null, DeepState? State = null);

/// <summary>
/// The test-time-trained memory (Titans §3, docs/deep-memories.md#1-what-runs) in its step and chunk forms. Per token t, with
/// M_{t'} the weights at the start of t's chunk and the window W_t = the last c tokens:
/// <code>
/// g_t = Σ_{i∈W_t} γ_i ∇ℓ(M_{t'}; k_i, v_i)                    (gradients w.r.t. the effective weights at M_{t'})
/// GD:        M_t = (1 − α_t) M_{t−1} − θ_t g_t
/// momentum:  S_t = η_t S_{t−1} − θ_t g_t,   M_t = (1 − α_t) M_{t−1} + S_t
/// Muon:      S_t = η_t S_{t−1} + g_t,       M_t = (1 − α_t) M_{t−1} − θ_t NS(S_t)
/// y_t = M*_t(q_t)                                                (read with the token's updated weights)
/// </code>
/// Each ∇ℓ is the rank-1 product inputsᵀ·deltas per MLP layer (<see cref="MemoryMlp.Gradients"/>), so within a chunk
/// M_t = D_t M_{t0} + B_t S_{t0} + Σ_i c_{t,i} u_i with scalar coefficient matrices built in log space. The chunk
/// form works block by block (a chunk is cut into blocks that continue from each other's weights; the gradients
/// stay at the chunk start) and reads through the dual form (no per-token weights; plain decay retention, GD or
/// momentum), through the dual form divided by ℓ_q's per-token norms, or through every token's weights
/// (<see cref="PerTokenWeights"/>: built in the forward and again in the backward, never kept). Muon's blocks, which
/// orthogonalise every token's momentum, are recomputed in the backward (<see cref="Runtime.Recompute"/>).
/// </summary>
public static class DeepKernel
{
    /// <summary>
    /// The chunk form: a scan over blocks of at most <paramref name="blockSize"/> tokens (default
    /// <see cref="BlockSize"/>), every block's work batched over its tokens. A block never crosses a chunk boundary
    /// and every block of a chunk takes its gradients at the chunk-start weights, so the block size changes only
    /// speed and memory, never the result (the chunk size is part of the model, the block size is not).
    /// </summary>
    public static (Tensor O, DeepState State) Chunk(DeepMemoryRule rule, MemoryMlp mlp, DeepInputs x, int chunkSize, int? blockSize = null)
    {
        using var scope = NewDisposeScope();
        var (q, k, v, gates, state) = Prepare(rule, mlp, x);
        int block = blockSize ?? BlockSize(rule, mlp, q.shape[0] * q.shape[1], chunkSize);
        if (block < 1) throw new MnemoException($"block size must be at least 1, got {block}");
        // Pieces: first the rest of the chunk the state is in, then whole chunks, then a remainder, each cut into
        // blocks. Split once (one backward node per tensor; a narrow per piece would backpropagate a full-size zero
        // tensor each, O(T²/C)).
        var sizes = new List<long>();
        for (long start = 0, offset = state.Offset; start < q.shape[2]; offset = (offset + sizes[^1]) % chunkSize)
        {
            long n = Math.Min(Math.Min(chunkSize - offset, block), q.shape[2] - start);
            sizes.Add(n);
            start += n;
        }
        long[] at = [.. sizes];
        var (qs, ks, vs, gs) = (q.split(at, 2), k.split(at, 2), v.split(at, 2), gates.Split(at));
        var outputs = new List<Tensor>();
        Tensor[]? effective = null;
        for (int i = 0; i < at.Length; i++)
        {
            if (effective is null || state.Offset == 0)                        // once per chunk, shared by its blocks
                effective = state.ChunkStart.Select(rule.Retention.Effective).ToArray();
            // Without autograd a block's intermediates die with it. With autograd the graph keeps what it needs anyway,
            // and freeing the rest block by block fragmented the heap: titans at T = 1024 took 2× longer forward+backward
            // with 1.5× the peak RSS (page faults 440K vs 280K), so they go with the call's scope.
            using var blockScope = is_grad_enabled() ? null : NewDisposeScope();
            var (y, next) = ChunkPiece(rule, mlp, qs[i], ks[i], vs[i], gs[i], state, effective!, chunkSize);
            blockScope?.MoveToOuter(next.Tensors().Select(t => t.Tensor).Append(y));  // what this block made, not what it carried
            outputs.Add(y);
            state = next;
        }
        var o = (outputs.Count == 0 ? zeros(q.shape[0], q.shape[1], 0, mlp.ValueDim, q.dtype) : cat(outputs, 2)).transpose(1, 2);
        return (o.to(x.Q.dtype).MoveToOuterDisposeScope(), state.MoveToOuterDisposeScope());
    }

    /// <summary>Reads through the dual form: plain decay retention and a learner without Newton–Schulz.</summary>
    public static bool IsDual(DeepMemoryRule rule) => rule.Retention.IsIdentity && rule.Learner is not Muon;

    /// <summary>Largest block of the dual form: its intra-block work grows with the block (2n·E·(in + out) per layer,
    /// like attention's), its kept block-end weights shrink.</summary>
    public const int DualBlock = 64;

    /// <summary>Bytes of one block's per-token weights (one layer, [B, H, n, in, out]) the materialised forms aim under:
    /// small enough to stay out of glibc's mmap path (at most 32 MB), whose fresh pages cost ~20 ns per float in page
    /// faults on the machine measured (10–20× the arithmetic on them), and to keep a block's work in cache.</summary>
    public const long MaterialisedBlockBytes = 8L << 20;

    /// <summary>The default block size, never above the chunk: <see cref="DualBlock"/> for the dual form; else as many
    /// tokens as keep a block's per-token weights under <see cref="MaterialisedBlockBytes"/> (at least 1), twice that
    /// for Muon, whose recomputed blocks each keep their inputs and outputs (fewer, larger blocks keep fewer).</summary>
    public static int BlockSize(DeepMemoryRule rule, MemoryMlp mlp, long batchHeads, int chunkSize)
    {
        if (IsDual(rule)) return Math.Min(chunkSize, DualBlock);
        long perToken = batchHeads * mlp.Layers.Max(s => s.In * s.Out) * sizeof(float);
        long budget = rule.Learner is Muon ? 2 * MaterialisedBlockBytes : MaterialisedBlockBytes;
        return (int)Math.Clamp(budget / perToken, 1, Math.Min(chunkSize, DualBlock));
    }

    /// <summary>The step form applied token by token (streaming state: chunk-start weights, weights, momentum, window).</summary>
    public static (Tensor O, DeepState State) StepLoop(DeepMemoryRule rule, MemoryMlp mlp, DeepInputs x, int chunkSize)
    {
        using var scope = NewDisposeScope();
        var (q, k, v, gates, state) = Prepare(rule, mlp, x);
        var (qs, ks, vs, gs) = (q.unbind(2), k.unbind(2), v.unbind(2), gates.PerToken());
        var outputs = new List<Tensor>();
        for (int i = 0; i < qs.Length; i++)
        {
            (var y, state) = Step(rule, mlp, qs[i], ks[i], vs[i], gs[i], state, chunkSize);
            outputs.Add(y);
        }
        var o = (outputs.Count == 0 ? zeros(q.shape[0], q.shape[1], 0, mlp.ValueDim, q.dtype) : stack(outputs, 2)).transpose(1, 2);
        return (o.to(x.Q.dtype).MoveToOuterDisposeScope(), state.MoveToOuterDisposeScope());
    }

    /// <summary>Per-token gates [B, H, T] in the compute type; absent ones are null.</summary>
    internal sealed record Gates(Tensor Theta, Tensor? Eta, Tensor? Alpha, Tensor? Gamma, Tensor? Delta)
    {
        /// <summary>The gates of consecutive pieces of the given sizes along time.</summary>
        public Gates[] Split(long[] sizes)
        {
            var (theta, eta, alpha, gamma, delta) =
                (Theta.split(sizes, 2), Eta?.split(sizes, 2), Alpha?.split(sizes, 2), Gamma?.split(sizes, 2), Delta?.split(sizes, 2));
            return Enumerable.Range(0, sizes.Length).Select(i => new Gates(theta[i], eta?[i], alpha?[i], gamma?[i], delta?[i])).ToArray();
        }
        /// <summary>Each token's gates [B, H], through unbind: one backward node for all T slices, where T selects
        /// would each backpropagate a full-size zero tensor (a backward quadratic in T).</summary>
        public Gates[] PerToken()
        {
            var (theta, eta, alpha, gamma, delta) = (Theta.unbind(2), Eta?.unbind(2), Alpha?.unbind(2), Gamma?.unbind(2), Delta?.unbind(2));
            return Enumerable.Range(0, theta.Length).Select(i => new Gates(theta[i], eta?[i], alpha?[i], gamma?[i], delta?[i])).ToArray();
        }
    }

    static (Tensor Q, Tensor K, Tensor V, Gates Gates, DeepState State) Prepare(DeepMemoryRule rule, MemoryMlp mlp, DeepInputs x)
    {
        DeepKernels.Validate(rule, mlp, x);
        var dtype = Chunks.ComputeType(x.Q);
        Tensor Heads(Tensor a) => a.to(dtype).transpose(1, 2);                 // [B, T, H, D] → [B, H, T, D]
        Tensor? Scalar(Tensor? a) => a?.to(dtype).transpose(1, 2);             // [B, T, H] → [B, H, T]
        var gates = new Gates(Scalar(x.Theta)!, rule.Learner.HasMomentum ? Scalar(x.Eta) : null,
            Scalar(x.Alpha), Scalar(x.Gamma), Scalar(x.Delta));
        var state = x.State ?? DeepState.Initial(rule, x.W0!, x.Q.shape[0], mlp.KeyDim, mlp.ValueDim, dtype);
        return (Heads(x.Q), Heads(x.K), Heads(x.V), gates, state);
    }

    /// <summary>One token: q, k, v [B, H, D], gates [B, H].</summary>
    internal static (Tensor Y, DeepState State) Step(DeepMemoryRule rule, MemoryMlp mlp, Tensor q, Tensor k, Tensor v, Gates gates,
        DeepState state, int chunkSize)
    {
        // The window: the last c − 1 tokens and this one, all differentiated at the chunk-start weights.
        var (wk, wv, wgamma, wdelta) = Window(state, k.unsqueeze(2), v.unsqueeze(2), GammaOrOne(gates.Gamma, gates.Theta).unsqueeze(2),
            gates.Delta?.unsqueeze(2));
        var at = state.ChunkStart.Select(rule.Retention.Effective).ToArray();
        var (inputs, deltas) = mlp.Gradients(at, wk, y => rule.Objective.OutputError(y, wv, wdelta));
        deltas = rule.ShapeSteps(inputs, deltas);
        Tensor Column(Tensor a) => a.unsqueeze(-1).unsqueeze(-1);              // [B, H] → [B, H, 1, 1]
        var theta = Column(gates.Theta);
        var keep = gates.Alpha is null ? null : Column(1 - gates.Alpha);
        var weights = new Tensor[mlp.Depth];
        var momentum = state.Momentum is null ? null : new Tensor[mlp.Depth];
        for (int l = 0; l < mlp.Depth; l++)
        {
            var g = (inputs[l] * wgamma.unsqueeze(-1)).transpose(-1, -2).matmul(deltas[l]);   // Σ_i γ_i a_iᵀ δ_i  [B, H, in, out]
            var decayed = keep is null ? state.Weights[l] : keep * state.Weights[l];
            switch (rule.Learner)
            {
                case GradientDescent:
                    weights[l] = decayed - theta * g;
                    break;
                case MomentumDescent:
                    momentum![l] = Column(gates.Eta!) * state.Momentum![l] - theta * g;
                    weights[l] = decayed + momentum[l];
                    break;
                case Muon muon:
                    momentum![l] = Column(gates.Eta!) * state.Momentum![l] + g;
                    weights[l] = decayed - theta * muon.Orthogonalise(momentum[l]);
                    break;
                default:
                    throw new NotSupportedException(rule.Learner.ToString());
            }
        }
        var y = mlp.Apply(weights.Select(rule.Retention.Effective).ToArray(), q.unsqueeze(2)).squeeze(2);
        long offset = state.Offset + 1;
        bool chunkDone = offset == chunkSize;
        var next = new DeepState(weights, chunkDone ? weights : state.ChunkStart, momentum, chunkDone ? 0 : offset,
            Tail(state.WindowK, wk), Tail(state.WindowV, wv), Tail(state.WindowGamma, wgamma), Tail(state.WindowDelta, wdelta));
        return (y, next);
    }

    /// <summary>
    /// n consecutive tokens of one chunk (a block), starting state.Offset tokens into it: q, k, v [B, H, n, D], gates
    /// [B, H, n]. The window extends the tokens by the c − 1 before them (E = c − 1 + n "writers"), all differentiated
    /// at the chunk-start weights, whose effective weights are <paramref name="at"/>.
    /// </summary>
    static (Tensor Y, DeepState State) ChunkPiece(DeepMemoryRule rule, MemoryMlp mlp, Tensor q, Tensor k, Tensor v, Gates gates,
        DeepState state, Tensor[] at, int chunkSize)
    {
        long n = q.shape[2];
        var (ek, ev, egamma, edelta) = Window(state, k, v, GammaOrOne(gates.Gamma, gates.Theta), gates.Delta);
        var writers = new Writers(ek, ev, egamma, edelta);
        Tensor y;
        Tensor[] weights;
        Tensor[]? momentum;
        if (rule.Learner is Muon)
        {
            // Newton–Schulz on every token's momentum: autograd would keep its iterates for every block (~20 copies of
            // the per-token weights), so the block keeps only its inputs and is computed again in the backward.
            int depth = mlp.Depth;
            Tensor?[] inputs = [q, ek, ev, egamma, edelta, gates.Theta, gates.Eta, gates.Alpha, .. at, .. state.Weights,
                .. state.Momentum!];
            var outputs = Runtime.Recompute.Run(p =>
            {
                var (yp, wp, mp) = Update(rule, mlp, p[0]!, new Writers(p[1]!, p[2]!, p[3]!, p[4]),
                    new Gates(p[5]!, p[6], p[7], null, null),
                    Slice(p, 8, depth), Slice(p, 8 + depth, depth), Slice(p, 8 + 2 * depth, depth));
                return [yp, .. wp, .. mp!];
            }, inputs);
            (y, weights, momentum) = (outputs[0], outputs[1..(1 + depth)], outputs[(1 + depth)..]);
        }
        else (y, weights, momentum) = Update(rule, mlp, q, writers, gates, at, state.Weights, state.Momentum);

        long offset = state.Offset + n;
        bool chunkDone = offset == chunkSize;
        var next = new DeepState(weights, chunkDone ? weights : state.ChunkStart, momentum, chunkDone ? 0 : offset,
            Tail(state.WindowK, ek), Tail(state.WindowV, ev), Tail(state.WindowGamma, egamma), Tail(state.WindowDelta, edelta));
        return (y, next);
    }

    /// <summary>A block's writers: keys [B, H, E, Dk], values [B, H, E, Dv], window gates γ and thresholds δ [B, H, E].</summary>
    sealed record Writers(Tensor K, Tensor V, Tensor Gamma, Tensor? Delta);

    static Tensor[] Slice(Tensor?[] p, int start, int count) => p.Skip(start).Take(count).Select(t => t!).ToArray();

    /// <summary>
    /// One block's update and reads: q [B, H, n, Dk], the writers (the block's tokens after the c − 1 before them),
    /// gates θ, η, α [B, H, n]; the effective chunk-start weights (where every gradient is taken) and the block-start
    /// weights and momentum. Returns the reads and the block-end weights and momentum.
    /// </summary>
    static (Tensor Y, Tensor[] Weights, Tensor[]? Momentum) Update(DeepMemoryRule rule, MemoryMlp mlp, Tensor q, Writers writers,
        Gates gates, Tensor[] at, Tensor[] startWeights, Tensor[]? startMomentum)
    {
        long n = q.shape[2], lookback = rule.Window - 1;
        var (inputs, deltas) = mlp.Gradients(at, writers.K, y => rule.Objective.OutputError(y, writers.V, writers.Delta));
        deltas = rule.ShapeSteps(inputs, deltas);

        // window[j, e] = γ_e when writer e is in token j's window (token j is writer j + c − 1)   [B, H, n, E]
        var band = ones(n, n + lookback, ScalarType.Bool, q.device).triu(0).tril(lookback);
        var window = writers.Gamma.unsqueeze(-2) * band.to(q.dtype);
        var theta = gates.Theta;

        // Forgetting: decay[t, j] = Π_{j<l≤t} (1 − α_l), keepAll[t] = Π_{l≤t} (1 − α_l).
        var logKeep = gates.Alpha is null ? zeros_like(theta) : SafeLog(1 - gates.Alpha);
        var decay = Chunks.DecayMatrix(logKeep);                               // [B, H, n, n]
        var keepAll = logKeep.cumsum(-1).exp();                               // [B, H, n]

        Tensor writes;                     // c[t, e]: M_t = D_t M_{t0} + B_t S_{t0} + Σ_e c[t, e] u_e
        Tensor? carry = null;              // B_t
        Tensor? momentumWrites = null;     // S_t = P_t S_{t0} + Σ_e m[t, e] u_e
        Tensor? momentumCarry = null;      // P_t
        if (rule.Learner is GradientDescent)
        {
            writes = -(decay * theta.unsqueeze(-2)).matmul(window);
        }
        else
        {
            var logEta = SafeLog(gates.Eta!);
            var persist = Chunks.DecayMatrix(logEta);                          // Π_{i<m≤t} η_m   [B, H, n, n]
            momentumCarry = logEta.cumsum(-1).exp();
            momentumWrites = rule.Learner is Muon
                ? persist.matmul(window)
                : -persist.matmul(theta.unsqueeze(-1) * window);
            carry = decay.matmul(momentumCarry.unsqueeze(-1)).squeeze(-1);
            writes = decay.matmul(momentumWrites);
        }

        var weights = new Tensor[mlp.Depth];
        var momentum = startMomentum is null ? null : new Tensor[mlp.Depth];
        Tensor Last(Tensor coefficients) => coefficients.select(-1, n - 1);        // the block's last token [B, H]
        Tensor Row(Tensor coefficients) => coefficients.select(-2, n - 1);                       // its coefficient row [B, H, E]
        Tensor Scaled(Tensor scalar, Tensor matrix) => scalar.unsqueeze(-1).unsqueeze(-1) * matrix; // [B, H] × [B, H, in, out]
        Tensor Sum(int l, Tensor rowCoefficients) =>                            // Σ_e c_e u_e   [B, H, in, out]
            (inputs[l] * rowCoefficients.unsqueeze(-1)).transpose(-1, -2).matmul(deltas[l]);

        if (rule.Learner is Muon muon)
        {
            // Every token's momentum S_t [B, H, n, in, out], orthogonalised, decayed into its weights.
            var perToken = new Tensor[mlp.Depth];
            for (int l = 0; l < mlp.Depth; l++)
            {
                var momentumCoefficients = cat([momentumCarry!.unsqueeze(-1), momentumWrites!], -1);      // [P_t | m[t, e]]
                var s = PerTokenWeights.Materialise(momentumCoefficients, [startMomentum![l]], inputs[l], deltas[l]);
                var step = muon.Orthogonalise(s);                                                       // NS(S_t)
                var applied = (decay * theta.unsqueeze(-2)).matmul(step.flatten(3)).view(step.shape);  // Σ_j Π(1−α) θ_j NS(S_j)
                perToken[l] = keepAll.unsqueeze(-1).unsqueeze(-1) * startWeights[l].unsqueeze(2) - applied;
                // Copies, not views: a view would keep the block's per-token tensors alive with the state.
                momentum![l] = s.select(2, n - 1).clone();
                weights[l] = perToken[l].select(2, n - 1).clone();
            }
            return (mlp.Forward(q, (l, a) => rule.Retention.ReadPerToken(perToken[l], a)).Y, weights, momentum);
        }

        for (int l = 0; l < mlp.Depth; l++)
        {
            // M_n and S_n: the last token's row of the coefficients.
            weights[l] = Scaled(Last(keepAll), startWeights[l]) + Sum(l, Row(writes));
            if (carry is not null) weights[l] = weights[l] + Scaled(Last(carry), startMomentum![l]);
            if (momentum is not null)
                momentum[l] = Scaled(Last(momentumCarry!), startMomentum![l]) + Sum(l, Row(momentumWrites!));
        }

        // Dual form: z_t = D_t a_t M_{t0} + B_t a_t S_{t0} + Σ_e c[t, e] (a_t · a_e) δ_e — no per-token weights.
        Tensor Dual(int l, Tensor a)
        {
            var z = keepAll.unsqueeze(-1) * a.matmul(startWeights[l]);
            if (carry is not null) z = z + carry.unsqueeze(-1) * a.matmul(startMomentum![l]);
            return z + (a.matmul(inputs[l].transpose(-1, -2)) * writes).matmul(deltas[l]);
        }
        if (rule.Retention.IsIdentity) return (mlp.Forward(q, Dual).Y, weights, momentum);

        // Otherwise every token's raw weights M_t = D_t M_{t0} + B_t S_{t0} + Σ_e c[t, e] u_e are needed, built in the
        // forward and again in the backward, never kept (PerTokenWeights).
        var coefficients = cat(carry is null ? [keepAll.unsqueeze(-1), writes] : [keepAll.unsqueeze(-1), carry.unsqueeze(-1), writes], -1);
        Tensor[] Bases(int l) => carry is null ? [startWeights[l]] : [startWeights[l], startMomentum![l]];
        Tensor y;
        if (rule.Retention is LqRetention lq)
        {
            // ℓ_q only rescales each matrix, W_t = A_t / d_t: read through the dual form, divide by the per-token d_t,
            // for which only the power sums Σ|A_t|^q need the materialised weights.
            var divisors = Enumerable.Range(0, mlp.Depth)
                .Select(l => lq.Divisor(PerTokenWeights.Apply(new PerTokenMap.PowerSum(lq), coefficients, Bases(l), inputs[l], deltas[l])))
                .ToArray();                                                                          // [B, H, n] per layer
            y = mlp.Forward(q, (l, a) => Dual(l, a) / divisors[l].unsqueeze(-1)).Y;
        }
        else
        {
            var read = new PerTokenMap.Read(rule.Retention);
            y = mlp.Forward(q, (l, a) => PerTokenWeights.Apply(read, coefficients, Bases(l), inputs[l], deltas[l], a)).Y;
        }
        return (y, weights, momentum);
    }

    /// <summary>The writers of a piece: the carried c − 1 tokens followed by the new ones (along dim 2).</summary>
    static (Tensor K, Tensor V, Tensor Gamma, Tensor? Delta) Window(DeepState state, Tensor k, Tensor v, Tensor gamma, Tensor? delta)
    {
        if (state.WindowK is null) return (k, v, gamma, delta);
        return (cat([state.WindowK, k], 2), cat([state.WindowV!, v], 2), cat([state.WindowGamma!, gamma], 2),
            delta is null ? null : cat([state.WindowDelta!, delta], 2));
    }

    /// <summary>The last c − 1 writers, carried to the next piece (null without a window).</summary>
    static Tensor? Tail(Tensor? carried, Tensor? writers) =>
        carried is null || writers is null ? null : writers.narrow(2, writers.shape[2] - carried.shape[2], carried.shape[2]);

    static Tensor GammaOrOne(Tensor? gamma, Tensor like) => gamma ?? ones_like(like);

    /// <summary>log of a gate in [0, 1], clamped away from 0 so a closed gate gives a huge negative (not −∞) exponent:
    /// masked column sums stay finite and exp underflows to exactly 0.</summary>
    static Tensor SafeLog(Tensor p) => p.clamp_min(p.dtype == ScalarType.Float64 ? 1e-300 : 1e-30).log();
}
