namespace Mnemo.Tasks;

/// <summary>
/// A set of examples of one slice of a task, row-major [N, L]: inputs, and labels that are <see cref="Ignore"/>
/// wherever the task does not score. NumKvPairs is how many key→value bindings an example asks to recall
/// (MQAR: K; passkey: 1).
/// </summary>
public sealed record TaskBatch(int SeqLen, int NumKvPairs, long[] Inputs, long[] Labels)
{
    /// <summary>The label of unscored positions (PyTorch's ignore_index).</summary>
    public const long Ignore = -100;

    public int Count => Inputs.Length / SeqLen;
}
