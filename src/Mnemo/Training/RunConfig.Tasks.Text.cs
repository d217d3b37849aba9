using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>The text tasks' run config sections (docs/tasks.md#s-niah, docs/tasks.md#sort).</summary>
public sealed partial record RunConfig
{
    [Help("S-NIAH-1/2/3 analogue (single needle in a noise or text haystack); when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public NiahConfig? Niah { get; init; }

    [Help("SORT (which of two excerpt segments came first, in context); when present the run trains and tests on it")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SortConfig? Sort { get; init; }
}
