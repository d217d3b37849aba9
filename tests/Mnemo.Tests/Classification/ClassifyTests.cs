using Mnemo.Classification;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using static TorchSharp.torch;

namespace Mnemo.Tests.Classification;

/// <summary>The L2-SVM loss against its formula by hand, the folds, the sequence view of the features, the CSV reader's
/// errors, and a small study that must beat chance.</summary>
[Collection(TorchCollection.Name)]
public class ClassifyTests
{
    [Fact]
    public void The_svm_loss_is_the_weight_penalty_plus_C_times_the_mean_squared_hinge()
    {
        using var scope = NewDisposeScope();
        var scores = tensor(new[] { 0.5, -2.0, 1.5, 0.2, -0.3, 3.0 }, float64).view(2, 3);
        var labels = tensor(new long[] { 1, 2 });
        var weight = tensor(new[] { 1.0, -2.0, 0.5, 0.0 }, float64).view(2, 2);
        // y = [[-1, 1, -1], [-1, -1, 1]]; hinge terms max(0, 1 - y s)²:
        double[] terms = [1.5 * 1.5, 3.0 * 3.0, 2.5 * 2.5, 1.2 * 1.2, 0.7 * 0.7, 0];
        double expected = (1 + 4 + 0.25 + 0) / 4 + 5 * terms.Average();
        Assert.Equal(expected, L2Svm.Loss(scores, labels, weight, 5).item<double>(), 12);
    }

    [Fact]
    public void Folds_are_stratified_and_seeded()
    {
        int[] labels = [.. Enumerable.Range(0, 100).Select(i => i < 30 ? 1 : 0)];
        var folds = ClassifyStudy.Folds(labels, 5, seed: 3);
        Assert.Equal(folds, ClassifyStudy.Folds(labels, 5, seed: 3));
        Assert.NotEqual(folds, ClassifyStudy.Folds(labels, 5, seed: 4));
        for (int k = 0; k < 5; k++)
        {
            Assert.Equal(20, folds.Count(f => f == k));
            Assert.Equal(6, Enumerable.Range(0, 100).Count(i => folds[i] == k && labels[i] == 1));
        }
    }

    [Fact]
    public void Features_are_read_as_steps_of_grouped_columns_standardised_by_the_given_statistics()
    {
        using var scope = NewDisposeScope();
        var data = new Dataset("t", ["a_mean", "b_mean", "a_se", "b_se"], [[1, 2, 3, 4], [5, 6, 7, 8]], [0, 1], ["x", "y"], "test");
        var c = new ClassifyConfig { Data = new() { Steps = 2 } };
        var x = ClassifyStudy.Inputs(c, data, [1], mean: [1, 1, 1, 1], std: [2, 2, 2, 2]);
        Assert.Equal([1, 2, 2], x.shape);
        // step 0 holds columns 0 and 2 (a's mean and se), step 1 columns 1 and 3
        Assert.Equal(new float[] { 2, 3, 2.5f, 3.5f }, x.data<float>().ToArray());
    }

    [Fact]
    public void A_bad_csv_names_the_line_and_column()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mnemo-bad-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, "f1,f2,label\n1,2,a\n3,x,b\n");
        try
        {
            var e = Assert.Throws<MnemoException>(() => Datasets.ReadCsv(path));
            Assert.Contains(":3: column \"f2\" is \"x\"", e.Message);
        }
        finally { File.Delete(path); }
        Assert.Contains("does not exist", Assert.Throws<MnemoException>(() => Datasets.Load("/no/such/file.csv")).Message);
    }

    [Fact]
    public void Steps_that_do_not_divide_the_features_are_refused()
    {
        var c = new ClassifyConfig { Data = new() { Steps = 7 } };
        var e = Assert.Throws<MnemoException>(() =>
            ClassifyStudy.Run(c, Datasets.Generated(0, null), [MixerKind.Gru], [HeadKind.Svm], [1]));
        Assert.Contains("data.steps", e.Message);
    }

    [Fact]
    public void A_small_study_beats_chance_with_both_heads()
    {
        var c = ClassifyConfig.Load(null, ["model.d_model=16", "training.steps=60", "data.folds=3", "training.warmup_steps=5"]);
        var runs = ClassifyStudy.Run(c, Datasets.Generated(1, null), [MixerKind.Gru], [HeadKind.Svm, HeadKind.Softmax], [1]);
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.True(r.Accuracy > 0.8, $"{r.Head}: {r.Accuracy:P1} (the majority class is 62.7%)"));
    }
}
