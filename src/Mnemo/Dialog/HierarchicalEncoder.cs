using Mnemo.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>
/// The hierarchical recurrent encoder (docs/dialog.md#hierarchical-recurrent-encoder). Per round t, the question is read
/// with the image fused early (the image vector, projected, added to every word's embedding: the paper's code
/// concatenates them before the LSTM, whose input map is linear) and round t's fact (the caption for t = 0, else round
/// t − 1's question and answer) is read by its own encoder. The pair [qi_t; h_t], projected to d_model, is one step of a
/// dialog-level memory, the same stack of model.mixer run over the rounds; its state after round t is round t's
/// encoding, so the dialog's past reaches round t only through that memory.
/// </summary>
public sealed class HierarchicalEncoder : nn.Module, IDialogEncoder
{
    readonly SequenceEncoder question;
    readonly Projection? image_proj;
    readonly SequenceEncoder fact;
    readonly Projection round_proj;
    readonly SequenceEncoder dialog;

    public HierarchicalEncoder(ModelConfig c, bool image) : base(nameof(HierarchicalEncoder))
    {
        question = new SequenceEncoder(c);
        if (image) image_proj = new Projection(c.DModel, c.DModel);
        fact = new SequenceEncoder(c);
        round_proj = new Projection(2 * c.DModel, c.DModel);
        dialog = new SequenceEncoder(c);
        RegisterComponents();
    }

    public Tensor Encode(DialogInputs x)
    {
        using var scope = NewDisposeScope();
        var b = x.Batch;
        var words = x.Embed(b.Questions.Tokens);                                            // [B·R, L, D]
        if (image_proj is not null) words = words + image_proj.forward(x.ImagePerRound()).unsqueeze(1);
        var qi = question.Last(words, b.Questions.Lengths);                                 // [B·R, D]
        var h = x.Read(fact, b.Facts);                                                      // [B·R, D]
        var rounds = round_proj.forward(cat([qi, h], 1)).view(b.Dialogs, SceneDialogs.Rounds, -1);   // [B, R, D]
        return dialog.forward(rounds).MoveToOuterDisposeScope();
    }
}
