namespace Mnemo.Training;

/// <summary>Linear warm-up from 0 to the peak, then cosine decay to peak·min_ratio at the last step.</summary>
static class LearningRateSchedule
{
    public static double At(long step, double peak, long warmup, long total, double minRatio)
    {
        if (step < warmup) return peak * (step + 1) / warmup;
        long decaySteps = Math.Max(1, total - warmup);
        double progress = Math.Clamp((double)(step - warmup) / decaySteps, 0, 1);
        double cosine = 0.5 * (1 + Math.Cos(Math.PI * progress));
        return peak * (minRatio + (1 - minRatio) * cosine);
    }
}
