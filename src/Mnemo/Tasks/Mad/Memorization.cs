namespace Mnemo.Tasks.Mad;

/// <summary>
/// MAD's memorization (docs/tasks.md#memorization): a fixed global key→value map, the same for train and test, must be
/// stored in the weights. Insert token V − 1; keys [0, (V−1)/2) and values [(V−1)/2, V − 1), each shuffled by a
/// stream seeded with kv_map_seed and paired in order. A row is L/2 pairs (key, insert token); the label at the
/// insert token is the key's value, every other label ignored.
/// </summary>
public static class Memorization
{
    public static TaskBatch Generate(int vocab, int seqLen, int mapSeed, int n, int seed)
    {
        var (keys, values) = Map(vocab, mapSeed);
        long insert = vocab - 1;
        return MadSequence.Batch(n, seqLen, seqLen / 2, seed, (rng, input, label) =>
        {
            for (int p = 0; p < seqLen / 2; p++)
            {
                int i = rng.Next(keys.Length);
                (input[2 * p], label[2 * p]) = (keys[i], TaskBatch.Ignore);
                (input[2 * p + 1], label[2 * p + 1]) = (insert, values[i]);
            }
        });
    }

    /// <summary>The fixed map as parallel arrays: keys[i] → values[i].</summary>
    public static (long[] Keys, long[] Values) Map(int vocab, int mapSeed)
    {
        var rng = new Random(mapSeed);
        var (k, v) = (MadSequence.Keys(vocab - 1), MadSequence.Values(vocab - 1));
        long[] keys = MadSequence.Motif(rng, k, k.Hi - k.Lo), values = MadSequence.Motif(rng, v, v.Hi - v.Lo);
        return (keys, values[..keys.Length]);
    }
}
