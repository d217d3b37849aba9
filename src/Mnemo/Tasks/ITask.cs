using System.Text.Json.Serialization;
using Mnemo.Models;
using Mnemo.Tasks.LanguageModeling;
using Mnemo.Tasks.Mad;
using Mnemo.Tasks.Verbatim;

namespace Mnemo.Tasks;

/// <summary>
/// What the trainer needs from a task: a vocabulary and seeded train/test slices of (inputs, labels). Config
/// records implement it, so members are methods or [JsonIgnore] (the binder reads back every written key).
/// <para>A run config's task is one of the kinds below, written <c>"task": {"kind": "passkey", …}</c> (an
/// <see cref="IO.ConfigUnion"/>): a new task kind is a config record and one line here.</para>
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(MqarConfig), "mqar")]
[JsonDerivedType(typeof(PasskeyConfig), "passkey")]
[JsonDerivedType(typeof(SetDisjointnessConfig), "set_disjointness")]
[JsonDerivedType(typeof(InductionHeadsConfig), "induction_heads")]
[JsonDerivedType(typeof(ParityDmsConfig), "parity_dms")]
[JsonDerivedType(typeof(StateTrackingConfig), "state_tracking")]
[JsonDerivedType(typeof(FactChainsConfig), "fact_chains")]
[JsonDerivedType(typeof(NiahConfig), "niah")]
[JsonDerivedType(typeof(SortConfig), "sort")]
[JsonDerivedType(typeof(MadConfig), "mad")]
[JsonDerivedType(typeof(SelectiveCopyingConfig), "selective_copying")]
[JsonDerivedType(typeof(VerbatimConfig), "verbatim")]
[JsonDerivedType(typeof(LanguageModelingConfig), "lm")]
public interface ITask
{
    /// <summary>Tokens are in [0, VocabSize).</summary>
    int VocabSize { get; }

    /// <summary>The longest sequence of any train or test slice (for learned position tables).</summary>
    int LongestSeqLen();

    TaskBatch[] TrainBatches();

    TaskBatch[] TestBatches();

    /// <summary>Rows per evaluation batch for a slice of length <paramref name="seqLen"/> (a task scoring every position
    /// of a large vocabulary keeps its logits in memory this way).</summary>
    int EvalRows(int seqLen) => 256;

    /// <summary>Extra metrics of test slice <paramref name="sliceIndex"/> (fresh accumulators per call); none by default.</summary>
    IReadOnlyList<ISliceMetric> SliceMetrics(int sliceIndex) => [];

    /// <summary>The metric reported as the headline accuracy (EvalResult.Accuracy) instead of the per-position
    /// accuracy, which then stays in the metrics as "token_accuracy"; null = the per-position accuracy.</summary>
    string? HeadlineMetric() => null;

    /// <summary>How scored positions are read out: the next-token head (every task but MAD's compression) or the
    /// compression decoder (see <see cref="LanguageModel.ScoredLogits"/>).</summary>
    Readout Readout() => Models.Readout.NextToken;

    /// <summary>Rows of the compression decoder the model needs (MAD's compression_targets); 0 = no decoder.</summary>
    int CompressionDecoderTargets() => 0;

    /// <summary>Why the data differs from what the config names (a text corpus replaced by generated text), recorded
    /// with the run's results; null when it does not.</summary>
    string? DataNote() => null;

    /// <summary>
    /// The result a report ranks runs by: "accuracy" (EvalResult.Accuracy, the headline
    /// above) or "exact_match" (every scored position of an example right: passkey and S-NIAH's string match).
    /// </summary>
    string ReportedScore() => "accuracy";
}
