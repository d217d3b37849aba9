namespace Mnemo.Tasks.Mad;

/// <summary>
/// MAD's fuzzy in-context recall (docs/tasks.md#fuzzy-in-context-recall): keys and values are motifs of 1..k and 1..v distinct tokens
/// (test keys always k tokens). Pad token V − 1; keys from [0, (V−1)/2), values from [(V−1)/2, V − 1). A probe pair
/// (key motif, value motif) is placed at a random point of the context and asked again at the end; key-value pairs
/// fill the rest (a key's value motif is drawn when it first appears; the probe key always maps to the probe value),
/// and a value whose key appeared before is probed. The sequence is left-padded to L + 1 tokens and shifted to rows
/// of L: train labels are every next token, test labels the probed values.
/// <para>One deviation: MAD can run out of room before placing the probe, leaving the final query unanswerable;
/// here the probe is placed at the last slot that still fits, so every probed value is in the context.</para>
/// </summary>
public static class FuzzyInContextRecall
{
    public static TaskBatch Generate(int vocab, int seqLen, int kMotif, int vMotif, int n, int seed, bool train) =>
        MadSequence.Batch(n, seqLen, 0, seed, (rng, input, label) =>
            Example(rng, vocab, seqLen, kMotif, vMotif, train).WriteShifted(train, input, label));

    public static MadSequence Example(Random rng, int vocab, int seqLen, int kMotif, int vMotif, bool train)
    {
        long pad = vocab - 1;
        var (keys, values) = (MadSequence.Keys(vocab - 1), MadSequence.Values(vocab - 1));
        int KeySize() => train ? rng.Next(1, kMotif + 1) : kMotif;
        int kProbeSize = KeySize(), vProbeSize = rng.Next(1, vMotif + 1);
        long[] kProbe = MadSequence.Motif(rng, keys, kProbeSize), vProbe = MadSequence.Motif(rng, values, vProbeSize);
        int probeAt = rng.Next(seqLen - 2 * (kProbeSize + vProbeSize));
        int budget = seqLen - (kProbeSize + vProbeSize) - (kMotif + vMotif);   // the context stops before this length

        var map = new Dictionary<string, long[]>();
        var seq = new MadSequence();
        bool probeAdded = false;
        while (seq.Count < budget)
        {
            int kSize = KeySize(), vSize = rng.Next(1, vMotif + 1);
            bool lastSlot = seq.Count + kMotif + vMotif >= budget;
            if (!probeAdded && (seq.Count >= probeAt || lastSlot))
            {
                seq.Add(kProbe);                                         // as MAD: this copy is never probed
                seq.Add(vProbe);
                map[Name(kProbe)] = vProbe;
                probeAdded = true;
                continue;
            }
            long[] k = MadSequence.Motif(rng, keys, kSize);
            string name = Name(k);
            bool seen = map.TryGetValue(name, out var v);
            if (!seen) v = name == Name(kProbe) ? vProbe : MadSequence.Motif(rng, values, vSize);
            if (name == Name(kProbe)) probeAdded = true;
            map[name] = v!;
            seq.Add(k);
            seq.Add(v, probed: seen);
        }
        seq.Add(kProbe);
        seq.Add(vProbe, probed: true);
        seq.PadLeft(pad, seqLen + 1);
        return seq;
    }

    static string Name(long[] motif) => string.Join(',', motif);
}
