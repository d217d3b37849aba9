using Mnemo.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>The encoder families of Das et al. (2017), and the answer prior that reads nothing (docs/dialog.md#the-encoders).</summary>
public enum EncoderKind
{
    /// <summary>LF: question, history and image encoded apart, concatenated, one tanh layer</summary>
    LateFusion,
    /// <summary>HRE: a dialog-level recurrent memory over rounds, each round its question (fused with the image) and fact</summary>
    Hierarchical,
    /// <summary>MN: the history's facts as memory slots, attended by the question by inner product</summary>
    MemoryNetwork,
    /// <summary>No input: a learned vector, so the scores rank answers by how likely they are a priori</summary>
    AnswerPrior,
}

/// <summary>An encoder and what it reads: the question always, the image (the scene description) and the history if set.
/// Named as in the paper: lf-qih is late fusion over question, image and history.</summary>
public sealed record EncoderSpec(EncoderKind Kind, bool Image, bool History)
{
    /// <summary>The encoders the paper reports with the discriminative decoder, by name.</summary>
    public static readonly EncoderSpec[] All =
    [
        new(EncoderKind.AnswerPrior, false, false),
        new(EncoderKind.LateFusion, false, false), new(EncoderKind.LateFusion, true, false),
        new(EncoderKind.LateFusion, false, true), new(EncoderKind.LateFusion, true, true),
        new(EncoderKind.Hierarchical, false, true), new(EncoderKind.Hierarchical, true, true),
        new(EncoderKind.MemoryNetwork, false, true), new(EncoderKind.MemoryNetwork, true, true),
    ];

    public string Name => Kind switch
    {
        EncoderKind.AnswerPrior => "answer-prior",
        _ => (Kind switch { EncoderKind.LateFusion => "lf", EncoderKind.Hierarchical => "hre", _ => "mn" }) + "-q" +
            (Image ? "i" : "") + (History ? "h" : ""),
    };

    public static EncoderSpec Parse(string name) => All.FirstOrDefault(e => e.Name == name.Trim().ToLowerInvariant())
        ?? throw new MnemoException($"unknown encoder \"{name}\"; the encoders are {string.Join(", ", All.Select(e => e.Name))}");
}

/// <summary>What an encoder is given for a batch: the batch, the shared word embedding and the image vector.</summary>
/// <param name="Embed">word ids [.., L] → embeddings [.., L, D]</param>
/// <param name="Image">the scene description's encoding [B, D], or null when the encoder does not read the image</param>
public sealed record DialogInputs(DialogBatch Batch, Func<Tensor, Tensor> Embed, Tensor? Image)
{
    /// <summary>The image vector repeated for each round: [B·R, D].</summary>
    public Tensor ImagePerRound() => Image!.repeat_interleave(SceneDialogs.Rounds, dim: 0);

    /// <summary>Each sequence of <paramref name="text"/> read by <paramref name="encoder"/>: [N, D].</summary>
    public Tensor Read(SequenceEncoder encoder, (Tensor Tokens, Tensor Lengths) text) => encoder.Last(Embed(text.Tokens), text.Lengths);
}

/// <summary>An encoder of the current round given the dialog so far: one vector per round.</summary>
public interface IDialogEncoder
{
    /// <returns>[B, R, D]: round t's encoding has read rounds 0 … t only</returns>
    Tensor Encode(DialogInputs x);
}

/// <summary>The answer prior's encoder: one learned vector for every question.</summary>
public sealed class AnswerPriorEncoder : nn.Module, IDialogEncoder
{
    readonly TorchSharp.Modules.Parameter prior;

    public AnswerPriorEncoder(ModelConfig c) : base(nameof(AnswerPriorEncoder))
    {
        prior = nn.Parameter(randn(c.DModel) * c.InitStd);
        RegisterComponents();
    }

    public Tensor Encode(DialogInputs x) => prior.view(1, 1, -1).expand(x.Batch.Dialogs, SceneDialogs.Rounds, -1);
}
