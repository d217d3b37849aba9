using static TorchSharp.torch;

namespace Mnemo.Classification;

/// <summary>
/// The L2-SVM output layer of GRU-SVM (Agarap 2017, arXiv 1709.03082; as his WDBC study computes it, arXiv 1711.07831;
/// docs/classification.md#the-heads): the head's scores s = W h + b are one-vs-rest SVM decision values, the labels
/// are coded y_k = +1 for the true class and −1 for every other, and the loss is
/// <code>L = mean(W²) + C · mean over examples and classes of max(0, 1 − y_k s_k)²</code>
/// (only the head's weight matrix is penalised). The prediction is the class with the largest score.
/// </summary>
public static class L2Svm
{
    /// <param name="scores">[B, K]</param>
    /// <param name="labels">class indices, int64 [B]</param>
    /// <param name="weight">the head's weight matrix</param>
    /// <param name="c">C, the hinge term's weight</param>
    public static Tensor Loss(Tensor scores, Tensor labels, Tensor weight, double c)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.one_hot(labels, scores.shape[1]).to(scores.dtype) * 2 - 1;   // ±1 one-vs-rest [B, K]
        var hinge = (1 - y * scores).clamp_min(0).square().mean();
        return (weight.square().mean() + c * hinge).MoveToOuterDisposeScope();
    }
}
