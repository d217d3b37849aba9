namespace Mnemo.Tasks;

/// <summary>
/// What one test batch holds when a task splits each test slice into bins along a second axis: the needle depth
/// (S-NIAH, for depth × length heatmaps) or the distance between segments (SORT's distance bins). Examples in the
/// batch have <see cref="Axis"/> in [<see cref="Lo"/>, <see cref="Hi"/>). Label names the bin in tables (default
/// "axis lo–hi"); a task whose slices differ by something other than a range (set disjointness: which set comes
/// first) gives its own.
/// </summary>
public sealed record SliceBin(int SeqLen, string Axis, double Lo, double Hi, string? Label = null)
{
    public string Name => Label ?? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Axis} {Lo:G3}–{Hi:G3}");
}

/// <summary>A task whose test batches are bins of its test slices; <see cref="TestBins"/> is aligned with
/// <see cref="ITask.TestBatches"/> (entry i describes batch i).</summary>
public interface IBinnedTask : ITask
{
    IReadOnlyList<SliceBin> TestBins();
}
