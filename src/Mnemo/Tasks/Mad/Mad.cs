namespace Mnemo.Tasks.Mad;

/// <summary>Generates a MAD slice by task (docs/tasks.md#mad); each task's generator is its own file.</summary>
public static class Mad
{
    public static TaskBatch Generate(MadConfig c, int n, int seed, bool train) => c.Task switch
    {
        MadTask.InContextRecall => InContextRecall.Generate(c.Vocab, c.Length, noiseVocab: 0, fracNoise: 0, n, seed, train),
        MadTask.NoisyInContextRecall => InContextRecall.Generate(c.Vocab, c.Length, c.NoiseVocabSize, c.FracNoise, n, seed, train),
        MadTask.FuzzyInContextRecall => FuzzyInContextRecall.Generate(c.Vocab, c.Length, c.KMotifSize, c.VMotifSize, n, seed, train),
        MadTask.SelectiveCopying =>
            SelectiveCopying.Generate(c.Vocab, c.Length, c.NumTokensToCopy, BlankPlacement.BeforeRandomToken, n, seed),
        MadTask.Compression => Compression.Generate(c.Vocab, c.Length, n, seed),
        MadTask.Memorization => Memorization.Generate(c.Vocab, c.Length, c.KvMapSeed, n, seed),
        _ => throw new ArgumentOutOfRangeException(nameof(c), c.Task, null),
    };
}
