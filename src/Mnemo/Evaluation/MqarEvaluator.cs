using Mnemo.Models;
using Mnemo.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Evaluation;

/// <summary>Accuracy on one (length, pairs) slice: per-position (Zoology) and exact match (all labels right).</summary>
public sealed record SliceAccuracy(int SeqLen, int NumKvPairs, long Examples, double Accuracy, double ExactMatch);

/// <summary>Test accuracy overall (mean over all examples) and per slice.</summary>
public sealed record EvalResult(double Accuracy, long Examples, IReadOnlyList<SliceAccuracy> Slices)
{
    public double ExactMatch => Slices.Sum(s => s.ExactMatch * s.Examples) / Math.Max(1, Examples);
}

public static class MqarEvaluator
{
    /// <summary>Scores a model on test slices of any task with Zoology's metric and exact match (see <see cref="RecallAccuracy"/>).</summary>
    public static EvalResult Evaluate(LanguageModel model, IReadOnlyList<TaskBatch> slices, int batchSize = 256)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            var total = new RecallAccuracy();
            var perSlice = new List<SliceAccuracy>();
            foreach (var slice in slices)
            {
                var acc = new RecallAccuracy();
                for (int start = 0; start < slice.Count; start += batchSize)
                {
                    using var scope = NewDisposeScope();
                    int[] rows = Enumerable.Range(start, Math.Min(batchSize, slice.Count - start)).ToArray();
                    var (inputs, labels) = ToTensors(slice, rows);
                    var mask = labels.ne(TaskBatch.Ignore);                                   // [B, T]
                    var hidden = model.Hidden(inputs);                                   // [B, T, D]
                    var predicted = model.Logits(hidden.index([TensorIndex.Tensor(mask)])).argmax(-1); // [N]
                    var correct = zeros_like(labels, dtype: int64);
                    correct.index_put_(predicted.eq(labels.index([TensorIndex.Tensor(mask)])).to(int64), [TensorIndex.Tensor(mask)]);
                    var correctPerRow = correct.sum(1).data<long>().ToArray();
                    var labelledPerRow = mask.sum(1).data<long>().ToArray();
                    for (int i = 0; i < rows.Length; i++) acc.AddExample((int)correctPerRow[i], (int)labelledPerRow[i]);
                }
                perSlice.Add(new SliceAccuracy(slice.SeqLen, slice.NumKvPairs, acc.Examples, acc.Value, acc.ExactMatch));
                total.Add(acc);
            }
            return new EvalResult(total.Value, total.Examples, perSlice);
        }
        finally
        {
            model.train(wasTraining);
        }
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
