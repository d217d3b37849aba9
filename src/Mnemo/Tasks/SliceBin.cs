namespace Mnemo.Tasks;

/// <summary>
/// What one test batch holds when a task splits each test slice into bins along a second axis: the needle depth
/// (S-NIAH, for depth × length heatmaps) or the distance between segments (SORT's distance bins). Examples in the
/// batch have <see cref="Axis"/> in [<see cref="Lo"/>, <see cref="Hi"/>).
/// </summary>
public sealed record SliceBin(int SeqLen, string Axis, double Lo, double Hi);

/// <summary>A task whose test batches are bins of its test slices; <see cref="TestBins"/> is aligned with
/// <see cref="ITask.TestBatches"/> (entry i describes batch i).</summary>
public interface IBinnedTask : ITask
{
    IReadOnlyList<SliceBin> TestBins();
}
