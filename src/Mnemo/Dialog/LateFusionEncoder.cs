using Mnemo.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>
/// Late fusion (docs/dialog.md#late-fusion): the question and the whole history (caption and every earlier question and
/// answer as one long text) are read by their own encoders; their final states and the image vector are concatenated and
/// fused by one layer, e = tanh(W [q; i; h] + b). Without the image or the history their parts are left out.
/// </summary>
public sealed class LateFusionEncoder : nn.Module, IDialogEncoder
{
    readonly SequenceEncoder question;
    readonly SequenceEncoder? history;
    readonly Projection fusion;

    public LateFusionEncoder(ModelConfig c, bool image, bool readsHistory) : base(nameof(LateFusionEncoder))
    {
        question = new SequenceEncoder(c);
        if (readsHistory) history = new SequenceEncoder(c);
        fusion = new Projection(c.DModel * (1 + (image ? 1 : 0) + (readsHistory ? 1 : 0)), c.DModel);
        RegisterComponents();
    }

    public Tensor Encode(DialogInputs x)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor> { x.Read(question, x.Batch.Questions) };               // [B·R, D]
        if (x.Image is not null) parts.Add(x.ImagePerRound());
        if (history is not null) parts.Add(x.Read(history, x.Batch.History));
        var e = tanh(fusion.forward(cat(parts, 1)));                                        // [B·R, D]
        return e.view(x.Batch.Dialogs, SceneDialogs.Rounds, -1).MoveToOuterDisposeScope();
    }
}
