using Mnemo.IO;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

/// <summary>Shared helpers of the task tests: a batch's rows, its scored positions, and a bad config's error.</summary>
public static class TaskRows
{
    public static IEnumerable<(long[] X, long[] Y)> Rows(TaskBatch b)
    {
        for (int i = 0; i < b.Count; i++)
            yield return (b.Inputs[(i * b.SeqLen)..((i + 1) * b.SeqLen)], b.Labels[(i * b.SeqLen)..((i + 1) * b.SeqLen)]);
    }

    /// <summary>Positions whose label is scored.</summary>
    public static int[] Scored(long[] y) => Enumerable.Range(0, y.Length).Where(i => y[i] != TaskBatch.Ignore).ToArray();

    /// <summary>Asserts the run config is rejected with a message naming the field.</summary>
    public static void RejectedNaming(string json, string field)
    {
        var e = Assert.Throws<ConfigException>(() => RunConfig.Parse(json, "t.json"));
        Assert.Contains($"\"{field}\"", e.Message);
    }

    /// <summary>Same seed and slice, same data; another seed or slice index, other data.</summary>
    public static void Deterministic(Func<int, int, TaskBatch> generate)
    {
        var a = generate(3, 0);
        var b = generate(3, 0);
        Assert.Equal(a.Inputs, b.Inputs);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Inputs, generate(4, 0).Inputs);
        Assert.NotEqual(a.Inputs, generate(3, 1).Inputs);
    }
}
