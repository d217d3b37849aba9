using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>The synthetic memory tasks of docs/tasks.md, each an optional task section.</summary>
public sealed partial record RunConfig
{
    [Help(
        "set disjointness (JRT, intersect_token): name the one token two sets share (docs/tasks.md#set-disjointness)" +
        "; when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SetDisjointnessConfig? SetDisjointness { get; init; }

    [Help(
        "induction heads (Mamba §4.1.2): after \"… s t … s\" predict t (docs/tasks.md#induction-heads)" +
        "; when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public InductionHeadsConfig? InductionHeads { get; init; }

    [Help(
        "N-parity / N-DMS on a bit stream, answer at the last step (docs/tasks.md#n-parity-and-n-dms)" +
        "; when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ParityDmsConfig? ParityDms { get; init; }

    [Help(
        "BABILong-style fact chains (qa1/qa2) among filler sentences, token-level (docs/tasks.md#fact-chains)" +
        "; when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public FactChainsConfig? FactChains { get; init; }
}
