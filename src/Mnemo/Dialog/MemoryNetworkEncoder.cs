using Mnemo.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Dialog;

/// <summary>
/// The memory network (docs/dialog.md#memory-network). The history's facts (the caption, then each earlier question and
/// answer) are read one by one into memory slots f_j. The question's encoding q, fused with the image when it reads one,
/// is the query q′ = tanh(W [q; i]); round t attends to its slots j ≤ t by inner product, α = softmax_j(q′·f_j), and the
/// read-out c = Σ_j α_j f_j passes one more layer and is added to the query: e = tanh(W_o tanh(W_c c) + q′).
/// </summary>
public sealed class MemoryNetworkEncoder : nn.Module, IDialogEncoder
{
    readonly SequenceEncoder question;
    readonly SequenceEncoder fact;
    readonly Projection query_proj;
    readonly Projection c_proj;
    readonly Projection o_proj;

    public MemoryNetworkEncoder(ModelConfig c, bool image) : base(nameof(MemoryNetworkEncoder))
    {
        question = new SequenceEncoder(c);
        fact = new SequenceEncoder(c);
        query_proj = new Projection(c.DModel * (image ? 2 : 1), c.DModel);
        c_proj = new Projection(c.DModel, c.DModel);
        o_proj = new Projection(c.DModel, c.DModel);
        RegisterComponents();
    }

    public Tensor Encode(DialogInputs x)
    {
        using var scope = NewDisposeScope();
        var b = x.Batch;
        int rounds = SceneDialogs.Rounds;
        var q = x.Read(question, b.Questions);                                              // [B·R, D]
        if (x.Image is not null) q = cat([q, x.ImagePerRound()], 1);
        var query = tanh(query_proj.forward(q)).view(b.Dialogs, rounds, -1);                // q′ [B, R, D]
        var facts = x.Read(fact, b.Facts).view(b.Dialogs, rounds, -1);                      // f [B, R, D]: slot j is fact j
        var logits = query.matmul(facts.transpose(1, 2));                                   // [B, R (round t), R (slot j)]
        var future = ones(rounds, rounds, dtype: ScalarType.Bool).triu(1);                  // slots j > t are not yet said
        var alpha = logits.masked_fill(future, double.NegativeInfinity).softmax(-1);
        var read = alpha.matmul(facts);                                                     // c [B, R, D]
        return tanh(o_proj.forward(tanh(c_proj.forward(read))) + query).MoveToOuterDisposeScope();
    }
}
