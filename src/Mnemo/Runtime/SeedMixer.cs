namespace Mnemo.Runtime;

/// <summary>
/// Derives independent, reproducible seeds from a base seed and a path of integers (e.g. seed, epoch, batch).
/// SplitMix64 finaliser: cheap and well mixed, so nearby inputs give unrelated streams.
/// </summary>
static class SeedMixer
{
    public static int Derive(long seed, params long[] path)
    {
        ulong h = Mix((ulong)seed);
        foreach (long p in path) h = Mix(h ^ Mix((ulong)p + 0x9E3779B97F4A7C15UL));
        return (int)(h & 0x7FFFFFFF);
    }

    static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
