namespace Mnemo.Tasks;

/// <summary>
/// What the trainer needs from a task: a vocabulary and seeded train/test slices of (inputs, labels). Config
/// records implement it, so members are methods or [JsonIgnore] (the binder reads back every written key).
/// </summary>
public interface ITask
{
    /// <summary>Tokens are in [0, VocabSize).</summary>
    int VocabSize { get; }

    /// <summary>The longest sequence of any train or test slice (for learned position tables).</summary>
    int LongestSeqLen();

    TaskBatch[] TrainBatches();

    TaskBatch[] TestBatches();

    /// <summary>
    /// The score a task is judged by: "accuracy" (per scored position, averaged per example: Zoology's MQAR metric)
    /// or "exact_match" (every scored position of an example right: passkey and S-NIAH's string match).
    /// </summary>
    string HeadlineMetric() => "accuracy";
}
