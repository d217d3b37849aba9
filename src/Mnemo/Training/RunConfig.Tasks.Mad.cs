using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Tasks.Mad;
using Mnemo.Tasks.Verbatim;

namespace Mnemo.Training;

/// <summary>The MAD suite, Mamba's selective copying and verbatim repetition (docs/tasks.md).</summary>
public sealed partial record RunConfig
{
    [Help("one MAD task setting (in-context recall, fuzzy/noisy recall, selective copying, compression, memorization); " +
        "headline accuracy is MAD's macro accuracy")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MadConfig? Mad { get; init; }

    [Help("selective copying with Mamba's settings (vocab 16 with the noise token, 16 tokens at random positions)")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SelectiveCopyingConfig? SelectiveCopying { get; init; }

    [Help("verbatim repetition of noun lists (Armeni et al.): repeat surprisal per condition; headline is next-token accuracy on list 2")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public VerbatimConfig? Verbatim { get; init; }
}
