namespace Mnemo.Tasks.Mad;

/// <summary>
/// MAD's multi-query in-context recall, and its noisy variant (docs/tasks.md#mad). Non-special tokens
/// ns = V − noise: keys [0, ns/2), values [ns/2, ns), noise [ns, V). A sequence is L/2 − 1 two-token slots and a
/// final probe pair. Each slot is, with probability frac_noise, two uniform noise tokens, otherwise a uniform key and
/// its value, drawn when the key first appears and fixed for the rest of the sequence; one slot is never noise. A
/// value whose key appeared before is a probed value; the probe pair repeats a key already shown. The L tokens are
/// shifted to rows of L − 1 (<see cref="MadSequence.WriteShifted"/>): train labels are every next token, test labels
/// only the probed values.
/// </summary>
public static class InContextRecall
{
    public static TaskBatch Generate(int vocab, int seqLen, int noiseVocab, double fracNoise, int n, int seed, bool train) =>
        MadSequence.Batch(n, seqLen - 1, seqLen / 2, seed, (rng, input, label) =>
            Example(rng, vocab, seqLen, noiseVocab, fracNoise).WriteShifted(train, input, label));

    public static MadSequence Example(Random rng, int vocab, int seqLen, int noiseVocab, double fracNoise)
    {
        int nonSpecial = vocab - noiseVocab, slots = seqLen / 2 - 1;
        var (keys, values) = (MadSequence.Keys(nonSpecial), MadSequence.Values(nonSpecial));
        var map = new Dictionary<long, long>();
        int keep = rng.Next(slots);                              // at least one key-value pair, so the probe has a key
        var seq = new MadSequence();
        for (int i = 0; i < slots; i++)
        {
            if (fracNoise > 0 && i != keep && rng.NextDouble() < fracNoise)
            {
                seq.Add([rng.Next(nonSpecial, vocab), rng.Next(nonSpecial, vocab)]);
                continue;
            }
            long k = rng.Next(keys.Lo, keys.Hi);
            bool seen = map.TryGetValue(k, out long v);
            if (!seen) map[k] = v = rng.Next(values.Lo, values.Hi);
            seq.Add(k);
            seq.Add([v], probed: seen);
        }
        long probe = map.Keys.ElementAt(rng.Next(map.Count));
        seq.Add(probe);
        seq.Add([map[probe]], probed: true);
        return seq;
    }
}
