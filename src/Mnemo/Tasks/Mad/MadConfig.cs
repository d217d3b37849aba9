using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Models;

namespace Mnemo.Tasks.Mad;

/// <summary>The six MAD tasks (Poli et al. 2024; docs/tasks.md#mad).</summary>
public enum MadTask { InContextRecall, FuzzyInContextRecall, NoisyInContextRecall, SelectiveCopying, Compression, Memorization }

/// <summary>A task's MAD baseline: vocabulary V, sequence length L and training examples N (docs/tasks.md#mad).</summary>
public sealed record MadBaseline(int VocabSize, int SeqLen, int NumTrainExamples)
{
    public static MadBaseline Of(MadTask task) => task switch
    {
        MadTask.InContextRecall or MadTask.FuzzyInContextRecall => new(16, 128, 12_800),
        MadTask.NoisyInContextRecall => new(32, 128, 12_800),
        MadTask.SelectiveCopying => new(16, 256, 12_800),
        MadTask.Compression => new(16, 32, 12_800),
        MadTask.Memorization => new(256, 32, 256),
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, null),
    };
}

/// <summary>
/// One setting of one MAD task (docs/tasks.md#mad, athms/mad-lab): V, L and N default to the task's baseline
/// (0 = baseline); the other fields hold MAD's baseline values and are read only by the tasks named in their help.
/// <para>Labels. The recall tasks (in-context, noisy, fuzzy) train on the full next-token sequence, as MAD does, but
/// are tested on the probed values only (values whose key appeared before, and the final probe): train and test
/// slices carry different labels. Selective copying, compression and memorization label the same positions in both.
/// </para>
/// <para>Metric. The headline test accuracy (EvalResult.Accuracy) is MAD's macro accuracy over the vocabulary
/// (<see cref="MacroAccuracy"/>); the per-position accuracy stays in the metrics as "token_accuracy". A run is one
/// setting; <see cref="MadScore"/> lists a task's settings and averages their accuracies into the MAD score.</para>
/// </summary>
[Help("one MAD task setting (in-context recall, fuzzy/noisy recall, selective copying, compression, memorization); " +
    "headline accuracy is MAD's macro accuracy")]
public sealed record MadConfig : IValidatedConfig, ITask
{
    [Help("the MAD task: in_context_recall, fuzzy_in_context_recall, noisy_in_context_recall, selective_copying, " +
        "compression or memorization")]
    public MadTask Task { get; init; } = MadTask.InContextRecall;
    [Help("vocabulary size V, special and noise tokens included; 0 = the task's baseline (16; noisy 32; memorization 256)"),
        Range(0, 1 << 20)]
    public int VocabSize { get; init; }
    [Help("MAD's seq_len L; 0 = the task's baseline (128; selective copying 256; compression and memorization 32). " +
        "Rows of the in-context recall and noisy tasks are L − 1 long (MAD's shift)"), Range(0, 1 << 24)]
    public int SeqLen { get; init; }
    [Help("training examples N; 0 = the task's baseline (12 800; memorization 256)"), Range(0, 100_000_000)]
    public int NumTrainExamples { get; init; }
    [Help("test examples (MAD: 1 280)"), Range(1, 100_000_000)] public int NumTestExamples { get; init; } = 1280;
    [Help("noisy_in_context_recall: probability that a key-value slot holds two noise tokens instead"), Range(0, 0.99)]
    public double FracNoise { get; init; } = 0.2;
    [Help("noisy_in_context_recall: noise tokens, the top of the vocabulary"), Range(1, 1 << 20)]
    public int NoiseVocabSize { get; init; } = 16;
    [Help("fuzzy_in_context_recall: longest key motif (keys are 1..k tokens; test keys always k)"), Range(1, 8)]
    public int KMotifSize { get; init; } = 3;
    [Help("fuzzy_in_context_recall: longest value motif (values are 1..v tokens)"), Range(1, 8)] public int VMotifSize { get; init; } = 3;
    [Help("selective_copying: tokens to copy"), Range(1, 1 << 20)] public int NumTokensToCopy { get; init; } = 16;
    [Help("memorization: seed of the fixed key→value map shared by train and test (MAD: 12345)"), Range(0, int.MaxValue)]
    public int KvMapSeed { get; init; } = 12345;
    [Help("compression: targets the compression decoder can reconstruct from the last position (≥ seq_len − 1); the " +
        "decoder's weights are part of the model and its checkpoints; 0 = no decoder")]
    [Range(0, 1 << 20)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int CompressionTargets { get; init; }
    [Help("seed of the training examples"), Range(0, int.MaxValue)] public int TrainSeed { get; init; } = 1;
    [Help("seed of the test examples (must differ from train_seed)"), Range(0, int.MaxValue)] public int TestSeed { get; init; } = 2;

    [JsonIgnore] public MadBaseline Baseline => MadBaseline.Of(Task);
    [JsonIgnore] public int Vocab => VocabSize > 0 ? VocabSize : Baseline.VocabSize;
    [JsonIgnore] public int Length => SeqLen > 0 ? SeqLen : Baseline.SeqLen;
    [JsonIgnore] public int TrainExamples => NumTrainExamples > 0 ? NumTrainExamples : Baseline.NumTrainExamples;

    int ITask.VocabSize => Vocab;
    public int LongestSeqLen() => Length;
    public TaskBatch[] TrainBatches() => [Mad.Generate(this, TrainExamples, TrainSeed, train: true)];
    public TaskBatch[] TestBatches() => [Mad.Generate(this, NumTestExamples, TestSeed, train: false)];
    public IReadOnlyList<ISliceMetric> SliceMetrics(int sliceIndex) => [new MacroAccuracyMetric(Vocab)];
    public string? HeadlineMetric() => MacroAccuracyMetric.Name;
    public Readout Readout() => Task == MadTask.Compression ? Models.Readout.Compression : Models.Readout.NextToken;
    public int CompressionDecoderTargets() => CompressionTargets;

    public IEnumerable<(string, string)> Validate()
    {
        if (TrainSeed == TestSeed) yield return ("test_seed", $"must differ from train_seed ({TrainSeed}) so test examples are unseen");
        int v = Vocab, l = Length;
        switch (Task)
        {
            case MadTask.InContextRecall or MadTask.NoisyInContextRecall or MadTask.Memorization:
                if (l % 2 != 0 || l < 4) yield return ("seq_len", $"{l} must be even and at least 4 (key-value slots of two tokens)");
                break;
            case MadTask.FuzzyInContextRecall:
                if (l <= 2 * (KMotifSize + VMotifSize))
                    yield return ("seq_len", $"{l} must exceed 2·(k_motif_size + v_motif_size) = {2 * (KMotifSize + VMotifSize)}");
                break;
            case MadTask.SelectiveCopying:
                if (l <= 2 * NumTokensToCopy + 1)
                    yield return ("seq_len", $"{l} must exceed 2·num_tokens_to_copy + 1 = {2 * NumTokensToCopy + 1}");
                break;
            case MadTask.Compression:
                if (l < 2) yield return ("seq_len", $"{l} must be at least 2 (tokens and the compression token)");
                break;
        }
        string? vocabProblem = Task switch
        {
            MadTask.NoisyInContextRecall when v - NoiseVocabSize < 2 => $"{v} leaves {v - NoiseVocabSize} key/value tokens after " +
                $"{NoiseVocabSize} noise tokens; need at least 2",
            MadTask.InContextRecall when v < 2 => $"{v} leaves no key and value tokens",
            MadTask.FuzzyInContextRecall when (v - 1) / 2 < KMotifSize || (v - 1) - (v - 1) / 2 < VMotifSize =>
                $"{v} gives {(v - 1) / 2} key and {(v - 1) - (v - 1) / 2} value tokens (one pad token); need ≥ k_motif_size " +
                $"{KMotifSize} and ≥ v_motif_size {VMotifSize} distinct",
            MadTask.SelectiveCopying or MadTask.Memorization when v < 3 => $"{v} leaves no data tokens after the two special tokens",
            MadTask.Compression when v < 2 => $"{v} leaves no data tokens after the compression token",
            _ => null,
        };
        if (vocabProblem is not null) yield return ("vocab_size", vocabProblem);
    }
}
