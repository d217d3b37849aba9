using static TorchSharp.torch;

namespace Mnemo.Memory.Deep;

/// <summary>
/// A point in the Miras design space: what the memory minimises (<see cref="Objective"/>), how it forgets
/// (<see cref="Retention"/>), how it learns (<see cref="Learner"/>) and over how many recent tokens each step's
/// loss is summed (the Omega rule's window c; 1 = the current token only). The memory's architecture
/// (<see cref="MemoryMlp"/>) and the chunk size are chosen alongside. Named rules live in Rules/.
/// </summary>
/// <param name="GradientClip">Soft clamp of each token's gradient norm per memory layer, g·c·tanh(‖g‖/c)/‖g‖
/// (lucidrains' numerics option); 0 = off. It bounds every inner step, which keeps a memory without the residual
/// LayerNorm from diverging.</param>
/// <param name="NormalizedStep">Scale each token's gradient g_l = a_lᵀδ_l of every layer (a_l the layer's input,
/// δ_l = ∂ℓ/∂z_l) by ‖δ_L‖² / (Σ_l ‖a_l‖²‖δ_l‖² + 1e−6·‖δ_L‖²), L the last layer: to first order the step
/// then moves the memory's last pre-activation z_L for that token's key by exactly −θ δ_L along δ_L, as the delta rule's step
/// moves a unit key's read, whatever scale the weights and hidden activations have grown to (normalised LMS; for a
/// matrix memory the factor is 1/(‖k‖² + 1e−6)). Applied before the clamp.</param>
public sealed record DeepMemoryRule(string Name, Objective Objective, Retention Retention, Learner Learner, int Window = 1,
    double GradientClip = 0, bool NormalizedStep = false)
{
    public const double NormalizedStepEpsilon = 1e-6;

    /// <summary>Scales each token's rank-1 gradient aᵀδ of every layer (deltas [B, H, N, out], in place of a copy):
    /// divided by ‖a‖² + ε with <see cref="NormalizedStep"/>, then its Frobenius norm ‖a‖‖δ‖ soft-clamped at
    /// <see cref="GradientClip"/>.</summary>
    public Tensor[] ShapeSteps(Tensor[] inputs, Tensor[] deltas)
    {
        if (NormalizedStep)
        {
            // ‖g_l‖² = ‖a_l‖²‖δ_l‖² per token [B, H, N, 1]; the factor ‖δ_L‖² / Σ_l ‖g_l‖² (the Rayleigh
            // quotient of the
            // memory's tangent kernel along δ_L, inverted).
            var last = deltas[^1].square().sum(-1, keepdim: true);
            var total = inputs.Zip(deltas, (a, d) => a.square().sum(-1, keepdim: true) * d.square().sum(-1, keepdim: true))
                .Aggregate((x, y) => x + y);
            var factor = last / (total + NormalizedStepEpsilon * last + 1e-30);
            deltas = deltas.Select(d => d * factor).ToArray();
        }
        if (GradientClip <= 0) return deltas;
        return deltas.Select((d, l) => d * SoftClampFactor(inputs[l].square().sum(-1) * d.square().sum(-1)).unsqueeze(-1)).ToArray();
    }

    /// <summary>c·tanh(r/c)/r for r = √(squared norm + 1e−12): 1 for small gradients, c/r for large, smooth at 0.</summary>
    public Tensor SoftClampFactor(Tensor squaredNorm)
    {
        var r = (squaredNorm + 1e-12).sqrt();
        return (r / GradientClip).tanh() * GradientClip / r;
    }

    /// <summary>Every named rule, by its CLI / config name.</summary>
    public static IReadOnlyDictionary<string, DeepMemoryRule> Named { get; } = new[]
    {
        Rules.Titans.Rule, Rules.Moneta.Rule, Rules.Yaad.Rule, Rules.Memora.Rule, Rules.OmegaNet.Rule, Rules.Atlas.Rule,
    }.ToDictionary(r => r.Name);

    /// <summary>The same rule with another Omega window (OmegaNet and ATLAS let the model choose c).</summary>
    public DeepMemoryRule WithWindow(int window) => window < 1
        ? throw new MnemoException($"the Omega window must be at least 1 token, got {window}")
        : this with { Window = window };
}
