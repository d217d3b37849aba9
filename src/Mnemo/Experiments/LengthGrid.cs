using System.Text.Json;
using Mnemo.IO;
using Mnemo.Sweeps;
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

    /// <summary>The training length L of a sweep: the longest sequence its first run trains or validates on.</summary>
    public static int TrainLength(SweepConfig sweep) => sweep.Runs()[0].Config.Task.LongestSeqLen();

    /// <summary>The lengths a sweep's final evaluation scores (its first run's).</summary>
    public static int[] EvalLengths(SweepConfig sweep) =>
        (sweep.Runs()[0].FinalEval ?? sweep.Runs()[0].Config).Task.TestBatches().Select(b => b.SeqLen).ToArray();

    /// <summary>
    /// A sweep whose final evaluation scores <paramref name="factors"/> × L instead (`--factors` of the aliases
    /// extrapolate and collapse): each task's test slices at those lengths, with the examples per length and the
    /// evaluation seed of the sweep's own final evaluation, and max_positions grown to cover the longest length. The
    /// new slices replace the final_eval of the axis whose values carry one (each value its task's), else the sweep's.
    /// </summary>
    public static SweepConfig WithFactors(SweepConfig sweep, IReadOnlyList<int>? factors)
    {
        if (factors is null || factors.Count == 0) return sweep;
        if (factors.Any(f => f < 1))
            throw new ConfigException($"--factors must each be ≥ 1, got {string.Join(", ", factors)}");
        var runs = sweep.Runs();
        var lengths = Lengths(TrainLength(sweep), factors);
        string[] FinalEvalOf(SweepRun run)
        {
            var (examples, seed) = (run.FinalEval ?? run.Config).Task switch
            {
                MqarConfig m => (m.Test[0].NumExamples, m.TestSeed),
                PasskeyConfig p => (p.Test[0].NumExamples, p.TestSeed),
                var t => throw new ConfigException(
                    $"sweep \"{sweep.Name}\": --factors needs an MQAR or passkey task, not {t.GetType().Name}"),
            };
            var test = TestAt(run.Config.Task, lengths, examples, seed) switch
            {
                MqarConfig m => JsonSerializer.SerializeToNode(m.Test, ConfigBinder.WriteOptions),
                var p => JsonSerializer.SerializeToNode(((PasskeyConfig)p).Test, ConfigBinder.WriteOptions),
            };
            return [$"task.test={test!.ToJsonString()}", $"task.test_seed={seed}"];
        }
        var perValue = sweep.Axes.FirstOrDefault(a => a.Values.Any(v => v.FinalEval.Length > 0));
        var updated = perValue is null
            ? sweep with { FinalEval = FinalEvalOf(runs[0]) }
            : sweep with
            {
                Axes = sweep.Axes.Select(a => a != perValue ? a : a with
                {
                    Values = a.Values.Select(v => v with { FinalEval = FinalEvalOf(runs.First(r => r.Cell[a.Name] == v.Name)) }).ToArray(),
                }).ToArray(),
            };
        int maxPositions = Math.Max(sweep.Base.Model.MaxPositions, lengths.Max());
        updated = updated with { Base = sweep.Base with { Model = sweep.Base.Model with { MaxPositions = maxPositions } } };
        _ = updated.Runs($"{sweep.Name} with --factors {string.Join(" ", factors)}");   // every run validated before training
        return updated;
    }

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
