using System.Diagnostics;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Classification;

/// <summary>One model (mixer × head × seed) over every fold: its cross-validated predictions scored together.</summary>
/// <param name="Precision">of the positive class: true positives over predicted positives</param>
/// <param name="Recall">of the positive class (true-positive rate)</param>
/// <param name="FalsePositiveRate">negatives predicted positive over negatives</param>
/// <param name="TrainSeconds">mean per fold</param>
public sealed record ClassifyRun(string Mixer, string Head, int Seed, double Accuracy, double Precision, double Recall,
    double FalsePositiveRate, double TrainSeconds, long Parameters);

/// <summary>
/// Sequence classification with cross-validation (docs/classification.md): each example's features are read as a
/// sequence of data.steps steps by a <see cref="WindowModel"/> (any mixer; a bidirectional LSTM/GRU is allowed), whose
/// head ends in an L2-SVM or a softmax. Folds are stratified and drawn from the seed; the features are standardised by
/// the mean and standard deviation of each fold's training part alone; every example is predicted once per seed, by
/// the model that did not train on it.
/// </summary>
public static class ClassifyStudy
{
    public static List<ClassifyRun> Run(ClassifyConfig c, Dataset data, IReadOnlyList<MixerKind> mixers, IReadOnlyList<HeadKind> heads,
        IReadOnlyList<int> seeds, Action<string>? log = null)
    {
        int features = data.Features.Length;
        if (features % c.Data.Steps != 0)
            throw new MnemoException($"data.steps: {c.Data.Steps} steps do not divide the {features} features of {data.Name}");
        int positive = c.Data.Positive.Length == 0 ? data.Classes.Length - 1 : Array.IndexOf(data.Classes, c.Data.Positive);
        if (positive < 0)
            throw new MnemoException($"data.positive: {data.Name} has no class \"{c.Data.Positive}\" (classes: " +
                $"{string.Join(", ", data.Classes)})");
        var runs = new List<ClassifyRun>();
        foreach (var mixer in mixers)
            foreach (var head in heads)
                foreach (int seed in seeds)
                {
                    var config = c with { Model = c.Model with { Mixer = mixer }, Training = c.Training with { Seed = seed } };
                    var run = CrossValidate(config, data, head, positive);
                    log?.Invoke($"{run.Mixer} + {run.Head} seed {seed}: accuracy {100 * run.Accuracy:F2}% " +
                        $"({run.TrainSeconds:F1} s per fold)");
                    runs.Add(run);
                }
        return runs;
    }

    /// <summary>Stratified folds: each class's examples shuffled by the seed and dealt round-robin. Returns each example's fold.</summary>
    public static int[] Folds(int[] labels, int folds, int seed)
    {
        var rng = new Random(seed);
        var fold = new int[labels.Length];
        int next = 0;
        foreach (var group in labels.Select((label, i) => (label, i)).GroupBy(x => x.label).OrderBy(g => g.Key))
            foreach (int i in group.Select(x => x.i).OrderBy(_ => rng.Next()).ToArray())
                fold[i] = next++ % folds;
        return fold;
    }

    static ClassifyRun CrossValidate(ClassifyConfig c, Dataset data, HeadKind head, int positive)
    {
        var fold = Folds(data.Labels, c.Data.Folds, SeedMixer.Derive(c.Training.Seed, 1));
        var predicted = new int[data.Count];
        double seconds = 0;
        long parameters = 0;
        for (int k = 0; k < c.Data.Folds; k++)
        {
            int[] train = [.. Enumerable.Range(0, data.Count).Where(i => fold[i] != k)];
            int[] test = [.. Enumerable.Range(0, data.Count).Where(i => fold[i] == k)];
            var clock = Stopwatch.StartNew();
            var (model, mean, std) = Train(c, data, head, train, k);
            seconds += clock.Elapsed.TotalSeconds;
            parameters = model.parameters().Sum(p => p.numel());
            using (no_grad())
            using (NewDisposeScope())
            {
                var scores = model.forward(Inputs(c, data, test, mean, std));
                var classes = scores.argmax(1).data<long>().ToArray();
                for (int j = 0; j < test.Length; j++) predicted[test[j]] = (int)classes[j];
            }
            model.Dispose();
        }
        int tp = 0, fp = 0, tn = 0, fn = 0;
        for (int i = 0; i < data.Count; i++)
        {
            bool real = data.Labels[i] == positive, said = predicted[i] == positive;
            if (real && said) tp++;
            else if (said) fp++;
            else if (real) fn++;
            else tn++;
        }
        double correct = Enumerable.Range(0, data.Count).Count(i => predicted[i] == data.Labels[i]);
        return new ClassifyRun(Names.Of(c.Model.Mixer), Names.Of(head), c.Training.Seed, correct / data.Count,
            tp + fp == 0 ? 0 : (double)tp / (tp + fp), tp + fn == 0 ? 0 : (double)tp / (tp + fn), fp + tn == 0 ? 0 : (double)fp / (fp + tn),
            seconds / c.Data.Folds, parameters);
    }

    static (WindowModel Model, double[] Mean, double[] Std) Train(ClassifyConfig c, Dataset data, HeadKind head, int[] train, int fold)
    {
        var t = c.Training;
        int features = data.Features.Length;
        var mean = Enumerable.Range(0, features).Select(j => train.Average(i => data.Rows[i][j])).ToArray();
        var std = Enumerable.Range(0, features).Select(j =>
            Math.Max(1e-12, Math.Sqrt(train.Average(i => Math.Pow(data.Rows[i][j] - mean[j], 2))))).ToArray();
        TorchRuntime.Seed(SeedMixer.Derive(t.Seed, 2, fold));
        var model = new WindowModel(c.Model, features / c.Data.Steps, data.Classes.Length);
        var rng = new Random(SeedMixer.Derive(t.Seed, 3, fold));
        using var x = Inputs(c, data, train, mean, std);                                   // the training part, standardised
        using var y = tensor(train.Select(i => (long)data.Labels[i]).ToArray());
        FitLoop.Run(model, t, $"fold {fold + 1}", _ =>
        {
            var batch = tensor(Enumerable.Range(0, Math.Min(t.BatchSize, train.Length))
                .Select(_ => (long)rng.Next(train.Length)).ToArray());                   // examples drawn with replacement
            var scores = model.forward(x.index_select(0, batch));
            var labels = y.index_select(0, batch);
            return head == HeadKind.Svm ? L2Svm.Loss(scores, labels, model.HeadWeight, c.SvmC)
                : nn.functional.cross_entropy(scores, labels);
        });
        return (model, mean, std);
    }

    /// <summary>Examples <paramref name="rows"/> standardised and read as sequences: [N, steps, features / steps], feature j
    /// of step t being column t + steps·j.</summary>
    public static Tensor Inputs(ClassifyConfig c, Dataset data, int[] rows, double[] mean, double[] std)
    {
        int features = data.Features.Length, steps = c.Data.Steps, width = features / steps;
        var values = new float[rows.Length * features];
        for (int n = 0; n < rows.Length; n++)
            for (int t = 0; t < steps; t++)
                for (int j = 0; j < width; j++)
                {
                    int column = t + steps * j;
                    values[(n * steps + t) * width + j] = (float)((data.Rows[rows[n]][column] - mean[column]) / std[column]);
                }
        return tensor(values).view(rows.Length, steps, width);
    }
}
