using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>
/// A model that reads a window of feature vectors and answers once, around any mixer: the window's F input features at
/// each step go through in_proj to d_model, the same pre-norm <see cref="Block"/>s as the language model (model.mixer
/// or model.layer_mixers), a final RMSNorm, and a linear head that reads the last step's state. The mixers are causal,
/// so the last step has read the whole window; a bidirectional LSTM/GRU is allowed, since the window is read whole
/// before the answer (<see cref="Steps"/> answers at every step instead). Used by the forecaster (all H steps ahead for
/// the F' target columns at once: outputs = H·F'), the sequence classifier (a score per class), the affect classifiers
/// (a score per class at every utterance) and the dance generator (a pose at every frame).
/// </summary>
public sealed class WindowModel : nn.Module<Tensor, Tensor>
{
    readonly Projection in_proj;
    readonly ModuleList<Block> layers;
    readonly RMSNorm norm;
    readonly Projection head;

    /// <param name="inputs">F, features per step</param>
    /// <param name="outputs">values the head emits</param>
    public WindowModel(ModelConfig c, int inputs, int outputs) : base(nameof(WindowModel))
    {
        in_proj = new Projection(inputs, c.DModel, hasBias: true);
        layers = nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(i => new Block(c, c.MixerOf(i))).ToArray());
        norm = new RMSNorm(c.DModel, c.NormEps);
        head = new Projection(c.DModel, outputs, hasBias: true);
        RegisterComponents();
        LanguageModel.InitialiseWeights(this, c);
    }

    /// <summary>The head's weight matrix [outputs, d_model] (what an L2-SVM head penalises).</summary>
    public Tensor HeadWeight => head.Weight;

    /// <param name="window">[B, L, F]</param>
    /// <returns>[B, outputs]</returns>
    public override Tensor forward(Tensor window)
    {
        using var scope = NewDisposeScope();
        var last = norm.forward(Mix(window).select(1, -1));                   // [B, D]
        return head.forward(last).MoveToOuterDisposeScope();
    }

    /// <summary>The head at every step, each having read the window up to it (and, bidirectional, after it).</summary>
    /// <param name="window">[B, L, F]</param>
    /// <returns>[B, L, outputs]</returns>
    public Tensor Steps(Tensor window)
    {
        using var scope = NewDisposeScope();
        return head.forward(norm.forward(Mix(window))).MoveToOuterDisposeScope();
    }

    /// <summary>in_proj and the blocks: [B, L, F] → [B, L, D].</summary>
    Tensor Mix(Tensor window)
    {
        var h = in_proj.forward(window);
        foreach (var layer in layers) h = layer.forward(h);
        return h;
    }
}
