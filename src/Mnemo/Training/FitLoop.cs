using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Training;

/// <summary>
/// The plain training loop of the models that are not language models (the forecaster, the sequence classifier): AdamW
/// as the trainer builds it, the warm-up and cosine learning-rate schedule, gradient-norm clipping, a stop on a loss
/// that is not finite, and resident memory kept in check (<see cref="ResidentGuard"/>). The caller's function draws its
/// batch and returns the loss of step s.
/// </summary>
public static class FitLoop
{
    /// <param name="what">names the run in the error when the loss diverges (e.g. "fold 2")</param>
    /// <param name="progress">called every training.log_every steps and at the end with (steps done, smoothed loss)</param>
    /// <returns>the training loss, exponentially smoothed (0.95) over the steps</returns>
    public static double Run(nn.Module model, TrainingConfig t, string what, Func<int, Tensor> loss, Action<int, double>? progress = null)
    {
        using var optimizer = Trainer.CreateOptimizer(model, t);
        double smoothed = double.NaN;
        var memory = new ResidentGuard(ResidentGuard.TrainingSlack);
        model.train();
        for (int step = 0; step < t.Steps; step++)
        {
            double lr = LearningRateSchedule.At(step, t.Lr, t.WarmupSteps, t.Steps, t.MinLrRatio);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            using (GcQuiet.Enter())                                           // see GcQuiet: no GC mid-call
            using (NewDisposeScope())
            {
                var l = loss(step);
                optimizer.zero_grad();
                l.backward();
                if (t.GradClip > 0) nn.utils.clip_grad_norm_(model.parameters(), t.GradClip);
                FusedAdamW.Step(optimizer);
                double value = l.item<float>();
                if (!double.IsFinite(value))
                    throw new TrainingDivergedException(step, $"{what}: the training loss became {value} at step {step}");
                smoothed = double.IsNaN(smoothed) ? value : 0.95 * smoothed + 0.05 * value;
            }
            memory.Check();
            if ((step + 1) % t.LogEvery == 0 || step + 1 == t.Steps) progress?.Invoke(step + 1, smoothed);
        }
        model.eval();
        return smoothed;
    }
}
