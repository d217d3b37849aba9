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

    public override Tensor forward(Tensor x) => MixedPrecision.Linear(x, weight, bias);
}
