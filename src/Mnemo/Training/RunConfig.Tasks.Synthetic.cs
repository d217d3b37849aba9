using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>The synthetic memory tasks of EVALUATIONS.md §4, §5, §10 and §12, each an optional task section.</summary>
public sealed partial record RunConfig
{
    [Help("set disjointness (JRT, intersect_token): name the one token two sets share (EVALUATIONS.md §5); when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SetDisjointnessConfig? SetDisjointness { get; init; }

    [Help("induction heads (Mamba §4.1.2): after \"… s t … s\" predict t (EVALUATIONS.md §12); when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public InductionHeadsConfig? InductionHeads { get; init; }

    [Help("N-parity / N-DMS on a bit stream, answer at the last step (EVALUATIONS.md §10); when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ParityDmsConfig? ParityDms { get; init; }

    [Help("BABILong-style fact chains (qa1/qa2) among filler sentences, token-level (EVALUATIONS.md §4); when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public FactChainsConfig? FactChains { get; init; }
}
