using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// The deep memory as the papers write it, one token at a time, with the inner gradient taken by autograd of the
/// objective's loss (create_graph, so the outer gradients flow through it) rather than the kernels' closed form:
/// <code>
/// g_t = ∇_W Σ_{i = t−c+1..t} γ_i ℓ(M_W(k_i), v_i) at W = effective(M_{t'})      (t' = start of t's chunk)
/// GD: M_t = (1 − α_t) M_{t−1} − θ_t g_t;  momentum: S_t = η_t S_{t−1} − θ_t g_t, M_t = (1 − α_t) M_{t−1} + S_t;
/// Muon: S_t = η_t S_{t−1} + g_t, M_t = (1 − α_t) M_{t−1} − θ_t NS(S_t);   y_t = M*_t(q_t)
/// </code>
/// Slow by design; for tests and cross-checks. Layout as <see cref="DeepInputs"/>.
/// </summary>
public static class NaiveDeepMemory
{
    public static (Tensor O, DeepState State) Run(DeepMemoryRule rule, MemoryMlp mlp, DeepInputs x, int chunkSize)
    {
        DeepKernels.Validate(rule, mlp, x);
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var dtype = x.Q.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var state = x.State ?? DeepState.Initial(rule, x.W0!, x.Q.shape[0], mlp.KeyDim, mlp.ValueDim, dtype);
        var weights = state.Weights.ToArray();
        var chunkStart = state.ChunkStart.ToArray();
        var momentum = state.Momentum?.ToArray();
        long offset = state.Offset;

        // Every writer so far, oldest first: the carried window, then each token as it arrives. [B, H, D] / [B, H]
        var keys = new List<Tensor>(); var values = new List<Tensor>(); var gammas = new List<Tensor>();
        var thresholds = new List<Tensor?>();
        for (long i = 0; i < (state.WindowK?.shape[2] ?? 0); i++)
        {
            keys.Add(state.WindowK!.select(2, i)); values.Add(state.WindowV!.select(2, i));
            gammas.Add(state.WindowGamma!.select(2, i)); thresholds.Add(state.WindowDelta?.select(2, i));
        }

        Tensor Token(Tensor a, long t) => a.select(1, t).to(dtype);            // [B, T, H, …] → [B, H, …]
        static Tensor Column(Tensor a) => a.unsqueeze(-1).unsqueeze(-1);       // [B, H] → [B, H, 1, 1]
        var outputs = new List<Tensor>();
        for (long t = 0; t < x.Q.shape[1]; t++)
        {
            keys.Add(Token(x.K, t)); values.Add(Token(x.V, t));
            gammas.Add(x.Gamma is null ? ones_like(Token(x.Theta, t)) : Token(x.Gamma, t));
            thresholds.Add(x.Delta is null ? null : Token(x.Delta, t));

            // The surprise: the gradient of the window's loss at the chunk-start weights.
            var at = chunkStart.Select(w => rule.Retention.Effective(w)).Select(w => w.requires_grad ? w : w.detach().requires_grad_(true))
                .ToArray();
            // Each window token's gradient on its own (normalised with normalised steps, soft-clamped by its Frobenius norm when the rule
            // clips), then the γ-weighted sum. Weights differ
            // per (b, h), so summing a loss over b and h is safe.
            var g = at.Select(w => zeros_like(w)).ToArray();
            for (int i = Math.Max(0, keys.Count - rule.Window); i < keys.Count; i++)
            {
                var (y, _, pre) = mlp.Forward(keys[i].unsqueeze(2), (l, a) => a.matmul(at[l]));
                var ell = rule.Objective.Loss(y, values[i].unsqueeze(2), thresholds[i]?.unsqueeze(2)).squeeze(2);
                var gi = torch.autograd.grad([ell.sum()], at, retain_graph: true, create_graph: true);
                if (rule.NormalizedStep)
                {
                    // ‖∂ℓ/∂z_L‖² over Σ_l ‖∂ℓ/∂W_l‖²_F, both from autograd.
                    var last = torch.autograd.grad([ell.sum()], [pre[^1]], retain_graph: true,
                        create_graph: true)[0].square().sum([-2, -1]);
                    var total = gi.Select(x => x.square().sum([-2, -1])).Aggregate((x, z) => x + z);
                    var factor = Column(last / (total + DeepMemoryRule.NormalizedStepEpsilon * last + 1e-30));
                    for (int l = 0; l < gi.Count; l++) gi[l] = gi[l] * factor;
                }
                for (int l = 0; l < g.Length; l++)
                {
                    var scale = rule.GradientClip > 0 ? rule.SoftClampFactor(gi[l].square().sum([-2, -1])) : ones_like(gammas[i]);
                    g[l] = g[l] + Column(gammas[i] * scale) * gi[l];
                }
            }

            var theta = Column(Token(x.Theta, t));
            var keep = x.Alpha is null ? null : Column(1 - Token(x.Alpha, t));
            for (int l = 0; l < weights.Length; l++)
            {
                var decayed = keep is null ? weights[l] : keep * weights[l];
                switch (rule.Learner)
                {
                    case GradientDescent:
                        weights[l] = decayed - theta * g[l];
                        break;
                    case MomentumDescent:
                        momentum![l] = Column(Token(x.Eta!, t)) * momentum[l] - theta * g[l];
                        weights[l] = decayed + momentum[l];
                        break;
                    case Muon muon:
                        momentum![l] = Column(Token(x.Eta!, t)) * momentum[l] + g[l];
                        weights[l] = decayed - theta * muon.Orthogonalise(momentum[l]);
                        break;
                }
            }
            outputs.Add(mlp.Apply(weights.Select(w => rule.Retention.Effective(w)).ToArray(), Token(x.Q, t).unsqueeze(2)).squeeze(2));
            if (++offset == chunkSize)
            {
                offset = 0;
                chunkStart = weights.ToArray();
            }
        }

        long lookback = rule.Window - 1;
        Tensor? Recent(List<Tensor> xs) => lookback == 0 ? null : stack(xs.Skip(xs.Count - (int)lookback).ToArray(), 2);
        var final = new DeepState(weights, chunkStart, momentum, offset, Recent(keys), Recent(values), Recent(gammas),
            x.Delta is null ? null : Recent(thresholds.Select(d => d!).ToList()));
        var o = outputs.Count == 0 ? zeros(x.Q.shape[0], 0, x.Q.shape[2], mlp.ValueDim, dtype) : stack(outputs, 1);
        return (o.to(x.Q.dtype).MoveToOuterDisposeScope(), final.MoveToOuterDisposeScope());
    }
}
