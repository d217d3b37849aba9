using Mnemo.Layers;
using Mnemo.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Forecasting;

/// <summary>
/// A direct multi-step forecaster around any mixer: the window's F input features at each step go through in_proj
/// to d_model, the same pre-norm <see cref="Block"/>s as the language model (model.mixer or model.layer_mixers),
/// a final RMSNorm, and a linear head that reads the last step's state and emits all H steps ahead for the F' target
/// columns at once. The mixers are causal, so the last step has read the whole window.
/// </summary>
public sealed class ForecastModel : nn.Module<Tensor, Tensor>
{
    readonly Projection in_proj;
    readonly ModuleList<Block> layers;
    readonly RMSNorm norm;
    readonly Projection head;
    readonly int _horizon, _targets;

    /// <param name="inputs">F, features per step</param>
    /// <param name="targets">F', columns forecast</param>
    /// <param name="horizon">H, steps ahead</param>
    public ForecastModel(ModelConfig c, int inputs, int targets, int horizon) : base(nameof(ForecastModel))
    {
        (_horizon, _targets) = (horizon, targets);
        in_proj = new Projection(inputs, c.DModel, hasBias: true);
        layers = nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(i => new Block(c, c.MixerOf(i))).ToArray());
        norm = new RMSNorm(c.DModel, c.NormEps);
        head = new Projection(c.DModel, horizon * targets, hasBias: true);
        RegisterComponents();
        LanguageModel.InitialiseWeights(this, c);
    }

    /// <param name="window">[B, L, F]</param>
    /// <returns>[B, H, F']</returns>
    public override Tensor forward(Tensor window)
    {
        using var scope = NewDisposeScope();
        var h = in_proj.forward(window);                                      // [B, L, D]
        foreach (var layer in layers) h = layer.forward(h);
        var last = norm.forward(h.select(1, -1));                             // [B, D]
        return head.forward(last).view(-1, _horizon, _targets).MoveToOuterDisposeScope();
    }
}
