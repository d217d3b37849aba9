using Mnemo.Runtime;
using Mnemo.Tasks;
using Mnemo.Tasks.Mad;
using Mnemo.Tasks.Verbatim;
using static TorchSharp.torch;

namespace Mnemo.Tests.Evaluation;

public class MetricTests
{
    static double Macro(int classes, long[] labels, long[] predicted)
    {
        var m = new MacroAccuracy(classes);
        m.Add(labels, predicted);
        return m.Value;
    }

    [Fact]
    public void Macro_accuracy_averages_per_class_recall()
    {
        // Class 0: 3 of 4 right (0.75); class 1: 1 of 1 (1.0); class 2: 0 of 1 (0). Token accuracy would be 4/6.
        Assert.Equal((0.75 + 1.0 + 0) / 3, Macro(4, [0, 0, 0, 0, 1, 2], [0, 0, 0, 1, 1, 0]), 12);
    }

    [Fact]
    public void Classes_never_seen_are_left_out_and_classes_only_predicted_count_zero()
    {
        // Class 3 is neither a label nor predicted: left out. Class 2 is predicted but never a label: recall 0/0
        // counts as 0 with weight 1 (torchmetrics' tp + fp + fn > 0 rule).
        Assert.Equal(1.0, Macro(4, [0, 1], [0, 1]), 12);
        Assert.Equal((0.5 + 1 + 0) / 3, Macro(4, [0, 0, 1], [0, 2, 1]), 12);
    }

    [Fact]
    public void Macro_accuracy_accumulates_like_one_pass_and_is_nan_when_empty()
    {
        var a = new MacroAccuracy(3);
        a.Add([0, 1], [0, 0]);
        var b = new MacroAccuracy(3);
        b.Add([2, 1], [2, 1]);
        a.Add(b);
        Assert.Equal(Macro(3, [0, 1, 2, 1], [0, 0, 2, 1]), a.Value, 12);
        Assert.True(double.IsNaN(new MacroAccuracy(3).Value));
    }

    [Fact]
    public void The_slice_metric_reads_only_scored_positions()
    {
        var m = new MacroAccuracyMetric(4);
        long i = TaskBatch.Ignore;
        m.AddExample(0, [i, 0, i, 1], [i, 0, i, 2], [float.NaN, float.NaN, float.NaN, float.NaN]);
        Assert.Equal((1.0 + 0) / 3, m.Values().Single(v => v.Key == MacroAccuracyMetric.Name).Value, 12);   // classes 0, 1, 2
    }

    [Fact]
    public void Repeat_surprisal_from_hand_made_logits()
    {
        // Two lists of 3 tokens over a vocabulary of 2. Logits per position; the label is token 0 everywhere.
        // p(0) = softmax: logits (0, 0) → 1/2; (ln 3, 0) → 3/4; (0, ln 3) → 1/4.
        float l3 = MathF.Log(3);
        var logits = tensor(new float[] { 0, 0, /**/ 0, 0, /**/ 0, l3, /**/ 0, l3, /**/ l3, 0, /**/ 0, 0 }, [6, 2]);
        var lp = logits.log_softmax(-1).select(1, 0).data<float>().ToArray();
        // List 1 without its first token: −ln(1/2), −ln(1/4) → x1 = (ln 2 + ln 4)/2. List 2: −ln(3/4), −ln(1/2).
        double x1 = (Math.Log(2) + Math.Log(4)) / 2, x2 = (Math.Log(4.0 / 3) + Math.Log(2)) / 2;
        Assert.Equal(100 * x2 / x1, RepeatSurprisal.Of(lp.AsSpan(0, 3), lp.AsSpan(3, 3)), 1e-4);   // float32 log-probs
    }

    [Fact]
    public void Median_of_odd_and_even_counts()
    {
        Assert.Equal(2, Statistics.Median([3, 1, 2]));
        Assert.Equal(2.5, Statistics.Median([4, 1, 2, 3]));
        Assert.True(double.IsNaN(Statistics.Median([])));
    }
}
