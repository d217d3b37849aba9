using Mnemo.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// y = x Wᵀ + b: libtorch's <c>nn.Linear</c> (same parameter names, same initialisation drawn from the same generator, so a
/// seed gives the same weights), whose product follows <see cref="MixedPrecision"/> (bf16 under
/// <c>training.precision: bf16</c>; weights stay fp32).
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter? bias;
    Parameter? lora_a, lora_b;                       // a low-rank update (AddLowRank), absent until added
    double _lowRankScale;

    /// <param name="inputs">in features</param>
    /// <param name="outputs">out features</param>
    /// <param name="hasBias">whether b exists</param>
    public Projection(long inputs, long outputs, bool hasBias = true) : base(nameof(Projection))
    {
        weight = new Parameter(empty(outputs, inputs));                                // [out, in]
        if (hasBias) bias = new Parameter(empty(outputs));
        using (no_grad())
        {
            // nn.Linear's reset_parameters: kaiming-uniform with a = √5, i.e. U(±1/√in), then the bias U(±1/√in).
            nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
            if (bias is not null) nn.init.uniform_(bias, -1 / Math.Sqrt(inputs), 1 / Math.Sqrt(inputs));
        }
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public Parameter? Bias => bias;

    /// <summary>Whether <see cref="AddLowRank"/> added an update: then the product is not x Wᵀ + b alone.</summary>
    public bool HasLowRank => lora_a is not null;

    /// <summary>
    /// Adds LoRA's low-rank update (Hu et al. 2021): y = x Wᵀ + b + (alpha / rank) · (x Aᵀ) Bᵀ with lora_a = A [rank, in]
    /// drawn as nn.Linear draws its weight and lora_b = B [out, rank] zero, so the layer starts as it was.
    /// </summary>
    public void AddLowRank(int rank, double alpha)
    {
        if (lora_a is not null) throw new InvalidOperationException("this projection already has a low-rank update");
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        lora_a = new Parameter(empty(rank, weight.shape[1], weight.dtype, weight.device));
        lora_b = new Parameter(zeros(weight.shape[0], rank, weight.dtype, weight.device));
        using (no_grad()) nn.init.kaiming_uniform_(lora_a, a: Math.Sqrt(5));
        register_parameter(nameof(lora_a), lora_a);
        register_parameter(nameof(lora_b), lora_b);
        _lowRankScale = alpha / rank;
    }

    public override Tensor forward(Tensor x)
    {
        var y = MixedPrecision.Linear(x, weight, bias);
        if (lora_a is null) return y;
        return y + MixedPrecision.Linear(MixedPrecision.Linear(x, lora_a, null), lora_b!, null) * _lowRankScale;
    }
}
