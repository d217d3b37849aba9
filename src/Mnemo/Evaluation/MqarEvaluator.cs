using Mnemo.Models;
using Mnemo.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Evaluation;

/// <summary>Accuracy on one (length, pairs) slice: per-position (Zoology) and exact match (all labels right).
/// Accuracy is the headline: the per-position accuracy unless the task names another metric
/// (<see cref="ITask.HeadlineMetric"/>, e.g. MAD's macro accuracy). Metrics holds the task's extra metrics
/// (<see cref="ITask.SliceMetrics"/>) and then also "token_accuracy"; null for tasks that ask for none.</summary>
public sealed record SliceAccuracy(int SeqLen, int NumKvPairs, long Examples, double Accuracy, double ExactMatch,
    IReadOnlyDictionary<string, double>? Metrics = null);

/// <summary>Test accuracy overall (mean over all examples) and per slice. Metrics, when the task has extra ones,
/// are each slice's values averaged with weights by example count.</summary>
public sealed record EvalResult(double Accuracy, long Examples, IReadOnlyList<SliceAccuracy> Slices,
    IReadOnlyDictionary<string, double>? Metrics = null)
{
    public double ExactMatch => Slices.Sum(s => s.ExactMatch * s.Examples) / Math.Max(1, Examples);
}

public static class MqarEvaluator
{
    /// <summary>The per-position accuracy's key in <see cref="SliceAccuracy.Metrics"/>.</summary>
    public const string TokenAccuracy = "token_accuracy";

    /// <summary>
    /// Scores a model on test slices of any task with Zoology's metric and exact match (see
    /// <see cref="RecallAccuracy"/>); with the task given, also its extra metrics, headline and readout.
    /// </summary>
    /// <param name="read">reads inputs [B, T] into logits [B, T, V] in place of the model's own forward (EM-LLM's reader,
    /// docs/mechanisms.md#em-llm-episodic-memory); next-token readout only</param>
    public static EvalResult Evaluate(LanguageModel model, IReadOnlyList<TaskBatch> slices, int batchSize = 256, ITask? task = null,
        Func<Tensor, Tensor>? read = null)
    {
        bool wasTraining = model.training;
        model.eval();
        var readout = task?.Readout() ?? Readout.NextToken;
        if (read is not null && readout != Readout.NextToken)
            throw new ArgumentException($"a reader gives next-token logits; this task reads out by {readout}", nameof(read));
        string? headline = task?.HeadlineMetric();
        try
        {
            using var noGrad = no_grad();
            var total = new RecallAccuracy();
            var perSlice = new List<SliceAccuracy>();
            for (int s = 0; s < slices.Count; s++)
            {
                var slice = slices[s];
                var metrics = task?.SliceMetrics(s) ?? [];
                bool logProbs = metrics.Any(m => m.NeedsLogProbs);
                var acc = new RecallAccuracy();
                int batch = Math.Min(batchSize, task?.EvalRows(slice.SeqLen) ?? batchSize);
                for (int start = 0; start < slice.Count; start += batch)
                {
                    using var quiet = Runtime.GcQuiet.Enter();
                    using var scope = NewDisposeScope();
                    int[] rows = Enumerable.Range(start, Math.Min(batch, slice.Count - start)).ToArray();
                    var (inputs, labels) = ToTensors(slice, rows);
                    var mask = labels.ne(TaskBatch.Ignore);                                   // [B, T]
                    var at = TensorIndex.Tensor(mask);
                    var logits = read is null ? model.ScoredLogits(inputs, mask, readout) : read(inputs).index([at]);   // [N, V]
                    var target = labels.index([at]);                                         // [N]
                    var predicted = logits.argmax(-1);                                       // [N]
                    var correct = zeros_like(labels, dtype: int64);
                    correct.index_put_(predicted.eq(target).to(int64), [at]);
                    var correctPerRow = correct.sum(1).data<long>().ToArray();
                    var labelledPerRow = mask.sum(1).data<long>().ToArray();
                    for (int i = 0; i < rows.Length; i++) acc.AddExample((int)correctPerRow[i], (int)labelledPerRow[i]);
                    if (metrics.Count > 0) FeedMetrics(metrics, slice, rows, mask, logits, target, predicted, logProbs);
                }
                perSlice.Add(SliceResult(slice, acc, metrics, headline));
                total.Add(acc);
            }
            return Overall(perSlice, headline is null ? total.Value : null);
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Hands each example's labels, predictions and (when asked) label log-probabilities to the metrics.</summary>
    static void FeedMetrics(IReadOnlyList<ISliceMetric> metrics, TaskBatch slice, int[] rows, Tensor mask, Tensor logits,
        Tensor target, Tensor predicted, bool logProbs)
    {
        int l = slice.SeqLen;
        var at = TensorIndex.Tensor(mask);
        var predictedFull = full(mask.shape, TaskBatch.Ignore, dtype: int64);
        predictedFull.index_put_(predicted, [at]);
        var pred = predictedFull.data<long>().ToArray();
        var lp = new float[rows.Length * l];
        if (logProbs)
        {
            var lpFull = full(mask.shape, float.NaN, dtype: float32);
            lpFull.index_put_(logits.to(float32).log_softmax(-1).gather(1, target.unsqueeze(1)).squeeze(1), [at]);
            lp = lpFull.data<float>().ToArray();
        }
        else Array.Fill(lp, float.NaN);
        for (int i = 0; i < rows.Length; i++)
        {
            var labels = slice.Labels.AsSpan(rows[i] * l, l);
            foreach (var m in metrics) m.AddExample(rows[i], labels, pred.AsSpan(i * l, l), lp.AsSpan(i * l, l));
        }
    }

    static SliceAccuracy SliceResult(TaskBatch slice, RecallAccuracy acc, IReadOnlyList<ISliceMetric> metrics, string? headline)
    {
        if (metrics.Count == 0 && headline is null)
            return new SliceAccuracy(slice.SeqLen, slice.NumKvPairs, acc.Examples, acc.Value, acc.ExactMatch);
        var values = new Dictionary<string, double> { [TokenAccuracy] = acc.Value };
        foreach (var m in metrics)
            foreach (var (name, value) in m.Values()) values[name] = value;
        double headlineValue = headline is null ? acc.Value
            : values.TryGetValue(headline, out double v) ? v
            : throw new InvalidOperationException($"the task's headline metric \"{headline}\" is not among its metrics (" +
                $"{string.Join(", ", values.Keys)})");
        return new SliceAccuracy(slice.SeqLen, slice.NumKvPairs, acc.Examples, headlineValue, acc.ExactMatch, values);
    }

    /// <summary>The mean over all examples of the headline (given, for the per-position accuracy), and of each
    /// metric (NaN slices skipped).</summary>
    static EvalResult Overall(List<SliceAccuracy> slices, double? tokenAccuracy)
    {
        long examples = slices.Sum(s => s.Examples);
        double accuracy = tokenAccuracy ?? (examples == 0 ? double.NaN : slices.Sum(s => s.Accuracy * s.Examples) / examples);
        Dictionary<string, double>? metrics = null;
        if (slices.Any(s => s.Metrics is not null))
        {
            metrics = [];
            foreach (string name in slices.Where(s => s.Metrics is not null).SelectMany(s => s.Metrics!.Keys).Distinct())
            {
                var weighted = slices.Where(s => s.Metrics is not null && s.Metrics.TryGetValue(name, out double v) && double.IsFinite(v))
                    .ToList();
                long n = weighted.Sum(s => s.Examples);
                metrics[name] = n == 0 ? double.NaN : weighted.Sum(s => s.Metrics![name] * s.Examples) / n;
            }
        }
        return new EvalResult(accuracy, examples, slices, metrics);
    }

    /// <summary>
    /// Logits [B, T, V] of inputs [B, T] fed through the streaming path <paramref name="piece"/> tokens at a time: a reader
    /// for <see cref="Evaluate"/> that checks a model whose whole pass reads ahead within a segment (HMT,
    /// docs/mechanisms.md#segment-memories) on what it can predict causally.
    /// </summary>
    public static Tensor Streamed(LanguageModel model, Tensor inputs, int piece = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(piece, 1);
        using var cache = model.NewCache();
        var pieces = new List<Tensor>();
        for (long start = 0; start < inputs.shape[1]; start += piece)
        {
            if (start / piece % 64 == 0) Runtime.GcQuiet.Renew();                    // a long stream lets its finalizers run now and then
            pieces.Add(model.Step(inputs.narrow(1, start, Math.Min(piece, inputs.shape[1] - start)), cache));
        }
        return cat(pieces, 1);
    }

    /// <summary>Rows of a slice as int64 tensors: inputs and labels, each [B, L].</summary>
    public static (Tensor Inputs, Tensor Labels) ToTensors(TaskBatch slice, int[] rows)
    {
        int l = slice.SeqLen;
        var x = new long[rows.Length * l];
        var y = new long[rows.Length * l];
        for (int i = 0; i < rows.Length; i++)
        {
            Array.Copy(slice.Inputs, rows[i] * l, x, i * l, l);
            Array.Copy(slice.Labels, rows[i] * l, y, i * l, l);
        }
        return (tensor(x, [rows.Length, l]), tensor(y, [rows.Length, l]));
    }
}
