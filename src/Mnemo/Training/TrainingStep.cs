using System.Diagnostics;
using Mnemo.Models;
using Mnemo.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Training;

/// <summary>Wall-clock of one training step's phases, in milliseconds (CPU libtorch is synchronous, so each phase's
/// clock sees all of its work).</summary>
/// <param name="ForwardMs">the model on the batch, the scored logits and the loss</param>
/// <param name="BackwardMs">zeroing the gradients and back-propagation</param>
/// <param name="OptimizerMs">gradient clipping and the optimizer's update</param>
public sealed record StepPhases(double ForwardMs, double BackwardMs, double OptimizerMs);

/// <summary>What one training step reports: the task loss, the accuracy on the scored positions, the gradient norm
/// before clipping (NaN without clipping), the tokens it read and its phases.</summary>
public sealed record StepOutcome(double Loss, double Accuracy, double GradNorm, long Tokens, StepPhases Phases);

/// <summary>
/// One optimizer step on one batch, exactly as `mnemo train` takes it (and `mnemo bench train` times it): the scored
/// logits, cross-entropy on the scored positions plus any auxiliary loss (MoM's router balance; the reported loss stays
/// the task's), backward, optional clipping, the update. Call it inside a dispose scope.
/// </summary>
static class TrainingStep
{
    public static StepOutcome Run(LanguageModel model, optim.Optimizer optimizer, Tensor inputs, Tensor labels, Readout readout,
        double gradClip)
    {
        long start = Stopwatch.GetTimestamp();
        var mask = labels.ne(TaskBatch.Ignore);                                       // [B, T]
        var logits = model.ScoredLogits(inputs, mask, readout);                       // [N, V], scored positions only
        var target = labels.index([TensorIndex.Tensor(mask)]);                       // [N]
        var loss = nn.functional.cross_entropy(logits, target);
        var aux = model.TakeAuxLoss();
        long forward = Stopwatch.GetTimestamp();
        optimizer.zero_grad();
        (aux is null ? loss : loss + aux).backward();
        long backward = Stopwatch.GetTimestamp();
        double gradNorm = gradClip > 0 ? nn.utils.clip_grad_norm_(model.parameters().Where(p => p.requires_grad), gradClip) : double.NaN;
        FusedAdamW.Step(optimizer);
        long update = Stopwatch.GetTimestamp();
        var phases = new StepPhases(Ms(start, forward), Ms(forward, backward), Ms(backward, update));
        double accuracy = logits.argmax(-1).eq(target).to(float32).mean().item<float>();
        return new StepOutcome(loss.item<float>(), accuracy, gradNorm, inputs.numel(), phases);
    }

    static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
}
