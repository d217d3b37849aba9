namespace Mnemo.Tasks.Mad;

/// <summary>
/// MAD's compression (docs/tasks.md#mad): L − 1 uniform tokens from [0, V − 1), then the compression token V − 1.
/// The model must reconstruct the L − 1 tokens from the compression position alone: the label at position t &lt;
/// L − 1 is token t, decoded by the model's compression decoder from the last hidden state and the index t
/// (<see cref="Models.Readout.Compression"/>), never by the next-token head. MAD also scores the compression token
/// itself (always right, a free class for the macro average); here only the L − 1 tokens are scored.
/// </summary>
public static class Compression
{
    public static TaskBatch Generate(int vocab, int seqLen, int n, int seed) =>
        MadSequence.Batch(n, seqLen, seqLen - 1, seed, (rng, input, label) =>
        {
            for (int t = 0; t < seqLen - 1; t++) input[t] = label[t] = rng.Next(vocab - 1);
            input[seqLen - 1] = vocab - 1;
            label[seqLen - 1] = TaskBatch.Ignore;
        });
}
