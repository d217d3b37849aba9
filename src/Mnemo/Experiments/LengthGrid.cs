using Mnemo.IO;
using Mnemo.Tasks;

namespace Mnemo.Experiments;

/// <summary>A task that can draw its test slices at a given sequence length, keeping everything else as trained
/// (what a length-extrapolation grid needs). New tasks opt in by implementing it.</summary>
public interface ILengthScalableTask : ITask
{
    /// <summary>The same task with one test slice per length (<paramref name="examples"/> each) from <paramref name="testSeed"/>.</summary>
    ITask TestAtLengths(IReadOnlyList<int> lengths, int examples, int testSeed);
}

/// <summary>
/// Length-extrapolation grid of `extrapolate` and `collapse`: the trained task's test slices replaced by one per
/// length L × factor. MQAR keeps its number of pairs (the first training slice's K): only distances and filler
/// grow; passkey keeps the needle and spreads depths evenly. A task that implements <see cref="ILengthScalableTask"/>
/// joins them (none other does yet); for every task, a sweep's final_eval scores the kept weights at any lengths.
/// </summary>
public static class LengthGrid
{
    public static int[] Lengths(int trainLength, IReadOnlyList<int> factors) => factors.Select(f => f * trainLength).ToArray();

    public static ITask TestAt(ITask task, IReadOnlyList<int> lengths, int examples, int testSeed) => task switch
    {
        ILengthScalableTask t => t.TestAtLengths(lengths, examples, testSeed),
        MqarConfig m => m with
        {
            Test = lengths.Select(l => new MqarSlice { SeqLen = l, NumKvPairs = m.Train[0].NumKvPairs, NumExamples = examples }).ToArray(),
            TestSeed = testSeed,
        },
        PasskeyConfig p => p with
        {
            Test = lengths.Select(l => new PasskeySlice { SeqLen = l, NumExamples = examples, Depths = DepthKind.Even }).ToArray(),
            TestSeed = testSeed,
        },
        _ => throw new ConfigException($"{task.GetType().Name} cannot draw test slices at a given length (implement " +
            $"{nameof(ILengthScalableTask)})"),
    };
}
