namespace Mnemo.Runtime;

/// <summary>Draws that <see cref="Random"/> lacks, from its own stream (so a seeded generator stays reproducible).</summary>
public static class RandomExtensions
{
    /// <summary>A standard normal draw by Box–Muller, from two uniform draws.</summary>
    public static double NextGaussian(this Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
