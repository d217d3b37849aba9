using Mnemo.Layers;
using Mnemo.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>
/// An encoder with the discriminative decoder (docs/dialog.md#the-discriminative-decoder): one word embedding shared by
/// every reader; the scene description read into the image vector when the encoder uses it; each candidate answer read
/// by its own encoder into a_k; score_k = e_t · a_k, trained with softmax cross-entropy over the candidates. Every
/// candidate comes from the answer pool, so the pool is read once per batch and the candidates are gathered from it.
/// </summary>
public sealed class DialogModel : nn.Module
{
    readonly Embedding embed;
    readonly SequenceEncoder? scene;
    readonly nn.Module encoder;
    readonly SequenceEncoder answer;
    readonly Tensor pool, pool_lengths;                                  // buffers: the answer pool's words [P, L], lengths [P]

    public DialogModel(ModelConfig c, EncoderSpec spec, DialogWords words) : base(nameof(DialogModel))
    {
        Spec = spec;
        embed = nn.Embedding(words.Count, c.DModel);
        if (spec.Image) scene = new SequenceEncoder(c);
        encoder = spec.Kind switch
        {
            EncoderKind.LateFusion => new LateFusionEncoder(c, spec.Image, spec.History),
            EncoderKind.Hierarchical => new HierarchicalEncoder(c, spec.Image),
            EncoderKind.MemoryNetwork => new MemoryNetworkEncoder(c, spec.Image),
            _ => new AnswerPriorEncoder(c),
        };
        answer = new SequenceEncoder(c);
        (pool, pool_lengths) = DialogBatch.Padded([.. SceneDialogs.AllAnswers.Select(words.Encode)]);
        RegisterComponents();
        LanguageModel.InitialiseWeights(this, c);
    }

    public EncoderSpec Spec { get; }

    /// <summary>The candidates' scores [B, R, N]: round t's encoding dotted with each candidate's.</summary>
    public Tensor Scores(DialogBatch batch)
    {
        using var scope = NewDisposeScope();
        var image = scene is null ? null : scene.Last(embed.forward(batch.Description.Tokens), batch.Description.Lengths);   // [B, D]
        var e = ((IDialogEncoder)encoder).Encode(new DialogInputs(batch, embed.forward, image));                     // [B, R, D]
        var a = answer.Last(embed.forward(pool), pool_lengths);                                                     // [P, D]
        var all = e.matmul(a.t());                                                                                   // [B, R, P]
        return all.gather(2, batch.Candidates).MoveToOuterDisposeScope();
    }

    /// <summary>Softmax cross-entropy of the human answer among the candidates, over every round of the batch.</summary>
    public Tensor Loss(DialogBatch batch)
    {
        using var scope = NewDisposeScope();
        var scores = Scores(batch);
        return nn.functional.cross_entropy(scores.flatten(0, 1), batch.Truth.flatten()).MoveToOuterDisposeScope();
    }
}
