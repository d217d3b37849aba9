using Mnemo.Layers;
using Mnemo.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>
/// The recurrent reader of every encoder (docs/dialog.md#the-encoders): model.num_layers pre-norm <see cref="Block"/>s
/// of model.mixer (an LSTM in the paper) and a final RMSNorm over an embedded sequence. The mixers are causal, so the
/// state at a sequence's last token has read the whole of it and the right padding after it is never read.
/// </summary>
public sealed class SequenceEncoder : nn.Module<Tensor, Tensor>
{
    readonly ModuleList<Block> layers;
    readonly RMSNorm norm;

    public SequenceEncoder(ModelConfig c) : base(nameof(SequenceEncoder))
    {
        if (c.Positions == PositionKind.Learned)
            throw new MnemoException("model.positions: the dialog encoders read rope or none, not learned positions");
        if (c.Rnn.Bidirectional)
            throw new MnemoException("model.rnn.bidirectional: the encoders read each padded sequence at its last token; a " +
                "backward cell would read it from the padding");
        layers = nn.ModuleList(Enumerable.Range(0, c.NumLayers).Select(i => new Block(c, c.MixerOf(i))).ToArray());
        norm = new RMSNorm(c.DModel, c.NormEps);
        RegisterComponents();
    }

    /// <param name="x">[N, L, D]</param>
    /// <returns>the state after every position, [N, L, D]</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var layer in layers) x = layer.forward(x);
        return norm.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>The state after each sequence's last token.</summary>
    /// <param name="x">[N, L, D], right-padded</param>
    /// <param name="lengths">[N] int64, each ≥ 1</param>
    /// <returns>[N, D]</returns>
    public Tensor Last(Tensor x, Tensor lengths)
    {
        using var scope = NewDisposeScope();
        var h = forward(x);
        var at = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[2]);            // [N, 1, D]
        return h.gather(1, at).squeeze(1).MoveToOuterDisposeScope();
    }
}
