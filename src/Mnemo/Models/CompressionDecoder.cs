using Mnemo.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>How a task's scored positions become logits.</summary>
public enum Readout
{
    /// <summary>The language-model head on the hidden state of each scored position (every recall task).</summary>
    NextToken,
    /// <summary>MAD's compression (docs/tasks.md#mad): every target is decoded from the hidden state of the last
    /// position alone, by <see cref="CompressionDecoder"/>.</summary>
    Compression,
}

/// <summary>
/// MAD's compression readout (docs/tasks.md#compression-and-the-compression-decoder): the last position's hidden state
/// c ∈ ℝ^D must hold the whole sequence. Target index t is decoded as
/// x = c + P[t];  x = GELU(W₂ GELU(W₁ norm(x)));  logits = head(norm(x)),
/// with a learned table P of one embedding per target index and the model's own output head. The decoder sees the
/// tokens only through c, so its accuracy measures what the mixers compressed into one state.
/// </summary>
public sealed class CompressionDecoder : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Embedding target_embeddings;
    readonly RMSNorm norm1, norm2;
    readonly Projection fc1, fc2;

    /// <param name="c">the model's dims</param>
    /// <param name="targets">target indices the decoder can reconstruct</param>
    public CompressionDecoder(ModelConfig c, int targets) : base(nameof(CompressionDecoder))
    {
        target_embeddings = nn.Embedding(targets, c.DModel);
        norm1 = new RMSNorm(c.DModel, c.NormEps);
        fc1 = new Projection(c.DModel, c.DModel);
        fc2 = new Projection(c.DModel, c.DModel);
        norm2 = new RMSNorm(c.DModel, c.NormEps);
        RegisterComponents();
    }

    /// <param name="code">[N, D] the compression position's hidden state, one row per target</param>
    /// <param name="targetIndex">[N] int64 index of each target in the sequence</param>
    /// <returns>[N, D] features for the output head</returns>
    public override Tensor forward(Tensor code, Tensor targetIndex)
    {
        using var scope = NewDisposeScope();
        var x = code + target_embeddings.forward(targetIndex);
        x = nn.functional.gelu(fc2.forward(nn.functional.gelu(fc1.forward(norm1.forward(x)))));
        return norm2.forward(x).MoveToOuterDisposeScope();
    }
}
