using Mnemo.Runtime;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>
/// Which examples form the batch of a given step. Each epoch shuffles every slice's examples, cuts them into
/// batches (one slice per batch, so lengths match), and shuffles the batch order — all seeded by (seed, epoch).
/// The batch of step t depends only on t, so a resumed run sees exactly the data an uninterrupted one would.
/// </summary>
sealed class BatchSchedule
{
    readonly TaskBatch[] _slices;
    readonly int _batchSize, _seed;
    readonly int _batchesPerEpoch;
    int _cachedEpoch = -1;
    (int Slice, int[] Rows)[] _epoch = [];

    public BatchSchedule(TaskBatch[] slices, int batchSize, int seed)
    {
        _slices = slices;
        _batchSize = batchSize;
        _seed = seed;
        _batchesPerEpoch = slices.Sum(s => (s.Count + batchSize - 1) / batchSize);
    }

    public int BatchesPerEpoch => _batchesPerEpoch;

    /// <summary>The slice and example rows of step t's batch.</summary>
    public (TaskBatch Slice, int[] Rows) At(long step)
    {
        int epoch = (int)(step / _batchesPerEpoch);
        if (epoch != _cachedEpoch)
        {
            _epoch = BuildEpoch(epoch);
            _cachedEpoch = epoch;
        }
        var (slice, rows) = _epoch[step % _batchesPerEpoch];
        return (_slices[slice], rows);
    }

    (int, int[])[] BuildEpoch(int epoch)
    {
        var batches = new List<(int, int[])>(_batchesPerEpoch);
        for (int s = 0; s < _slices.Length; s++)
        {
            var order = Enumerable.Range(0, _slices[s].Count).ToArray();
            new Random(SeedMixer.Derive(_seed, epoch, s)).Shuffle(order);
            for (int i = 0; i < order.Length; i += _batchSize) batches.Add((s, order[i..Math.Min(i + _batchSize, order.Length)]));
        }
        var shuffled = batches.ToArray();
        new Random(SeedMixer.Derive(_seed, epoch, -1)).Shuffle(shuffled);
        return shuffled;
    }
}
