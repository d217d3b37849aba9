using Mnemo.IO;
using Mnemo.Tasks;
using Mnemo.Tasks.Verbatim;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

public class VerbatimTests
{
    const long I = TaskBatch.Ignore;

    static VerbatimConfig Task(int listLen = 5, int filler = 26) => new()
    {
        Train = [new() { ListLen = listLen, FillerLen = filler, NumExamples = 90 }],
        Test = [new() { ListLen = listLen, FillerLen = filler, NumExamples = 90 }],
    };

    static IEnumerable<(long[] X, long[] Y)> Rows(TaskBatch b)
    {
        for (int i = 0; i < b.Count; i++)
            yield return (b.Inputs[(i * b.SeqLen)..((i + 1) * b.SeqLen)], b.Labels[(i * b.SeqLen)..((i + 1) * b.SeqLen)]);
    }

    [Theory]
    [InlineData(2, 0)]
    [InlineData(5, 26)]
    [InlineData(10, 99)]
    public void Conditions_are_what_they_say(int listLen, int filler)
    {
        var c = Task(listLen, filler);
        var layout = Verbatim.Layout.Of(c, c.Test[0]);
        var batch = c.TestBatches()[0];
        Assert.Equal(layout.RowLen, batch.SeqLen);
        int i = 0;
        foreach (var (x, y) in Rows(batch))
        {
            long[] s = [.. x, y[^1]];                                                 // list 2's last noun is the last label
            Assert.Equal(Enumerable.Range(c.FirstPreface, c.PrefaceLen).Select(t => (long)t), s[..c.PrefaceLen]);
            Assert.Equal(Enumerable.Range(c.FirstMarker, c.MarkerLen).Select(t => (long)t), s[(layout.List2 - c.MarkerLen)..layout.List2]);
            Assert.All(s[(layout.List1 + listLen)..(layout.List2 - c.MarkerLen)], t => Assert.InRange(t, c.FirstFiller, c.VocabSize - 1));
            var list1 = s[layout.List1..(layout.List1 + listLen)];
            var list2 = s[layout.List2..];
            Assert.All(list1.Concat(list2), t => Assert.InRange(t, 0, c.NumNouns - 1));
            Assert.Equal(listLen, list1.Distinct().Count());
            switch (Verbatim.ConditionOf(i++))
            {
                case ListCondition.Repeat: Assert.Equal(list1, list2); break;
                case ListCondition.Permute:
                    Assert.Equal(list1.Order(), list2.Order());
                    Assert.NotEqual(list1, list2);
                    break;
                case ListCondition.Novel: Assert.Empty(list1.Intersect(list2)); Assert.Equal(listLen, list2.Distinct().Count()); break;
            }
            // Test labels: the nouns of both lists, each predicted from the position before it.
            for (int t = 0; t < y.Length; t++)
            {
                bool noun = (t + 1 >= layout.List1 && t + 1 < layout.List1 + listLen) || t + 1 >= layout.List2;
                Assert.Equal(noun ? s[t + 1] : I, y[t]);
            }
        }
    }

    [Fact]
    public void Training_labels_every_next_token_after_the_preface_or_everywhere()
    {
        var c = Task();
        foreach (bool all in new[] { false, true })
        {
            var batch = (c with { LabelAll = all }).TrainBatches()[0];
            foreach (var (x, y) in Rows(batch))
                for (int t = 0; t < y.Length; t++)
                    Assert.Equal(all || t + 1 >= c.PrefaceLen ? (t + 1 < x.Length ? x[t + 1] : y[t]) : I, y[t]);
        }
    }

    [Fact]
    public void Same_seed_same_vignettes_different_seed_different_ones()
    {
        var c = Task();
        Assert.Equal(Verbatim.Generate(c, c.Train[0], 3, 0, true).Inputs, Verbatim.Generate(c, c.Train[0], 3, 0, true).Inputs);
        Assert.NotEqual(Verbatim.Generate(c, c.Train[0], 3, 0, true).Inputs, Verbatim.Generate(c, c.Train[0], 4, 0, true).Inputs);
        Assert.NotEqual(c.TrainBatches()[0].Inputs, c.TestBatches()[0].Inputs);
    }

    [Fact]
    public void The_metric_reports_each_condition_and_list_2_accuracy()
    {
        var c = Task(listLen: 3, filler: 0);
        var layout = Verbatim.Layout.Of(c, c.Test[0]);
        var metric = new VerbatimMetric(layout);
        int l = layout.RowLen;
        var labels = new long[l];
        Array.Fill(labels, I);
        var logProbs = new float[l];
        var predicted = new long[l];
        int list1 = layout.List1 - 1, list2 = layout.List2 - 1;
        for (int j = 0; j < 3; j++) { labels[list1 + j] = labels[list2 + j] = j; predicted[list2 + j] = j; }
        predicted[list2 + 2] = 9;                                                    // one of the two scored list-2 nouns wrong
        // List 1 surprisals (first dropped) 2, 2 → x1 = 2; list 2: 1, 1 in example 0 (repeat), 2, 2 in 1 (permute), 3, 3 in 2 (novel).
        for (int e = 0; e < 3; e++)
        {
            for (int j = 0; j < 3; j++) { logProbs[list1 + j] = -2; logProbs[list2 + j] = -(e + 1); }
            metric.AddExample(e, labels, predicted, logProbs);
        }
        var v = metric.Values().ToDictionary();
        Assert.Equal(50, v["repeat_surprisal_repeat"], 5);
        Assert.Equal(100, v["repeat_surprisal_permute"], 5);
        Assert.Equal(150, v["repeat_surprisal_novel"], 5);
        Assert.Equal(0.5, v[VerbatimMetric.List2Accuracy], 12);
    }

    [Fact]
    public void The_run_config_trains_on_verbatim_when_the_section_is_present()
    {
        var c = RunConfig.Parse("""{ "task": { "kind": "verbatim", "num_nouns": 20 } }""", "run.json");
        var task = Assert.IsType<VerbatimConfig>(c.Task);
        Assert.Equal(20 + 8 + 6 + 32, c.ResolvedModel.VocabSize);
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
        Assert.Equal(VerbatimMetric.List2Accuracy, ((ITask)task).HeadlineMetric());
    }

    [Theory]
    [InlineData("""{ "task": { "kind": "verbatim", "num_nouns": 9, "train": [ { "list_len": 4 } ], "test": [ { "list_len": 5 } ] } }""",
        "task.test[0].list_len")]
    [InlineData("""{ "task": { "kind": "verbatim", "train": [ { "list_len": 1 } ] } }""", "task.train[0].list_len")]
    [InlineData("""{ "task": { "kind": "verbatim", "train_seed": 5, "test_seed": 5 } }""", "task.test_seed")]
    [InlineData("""{ "task": { "kind": "verbatim", "test": [] } }""", "task.test")]
    [InlineData("""{ "task": { "kind": "verbatim", "preface_len": 0 } }""", "task.preface_len")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => TaskRows.RejectedNaming(json, field);
}
