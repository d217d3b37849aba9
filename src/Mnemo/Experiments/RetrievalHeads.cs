using Mnemo.Evaluation;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Tasks;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>Every attention head's retrieval score (rows = the model's attention layers in order, columns = heads) and
/// the copy events it was measured on.</summary>
public sealed record HeadScores(int[] Layers, double[,] Score, long CopyEvents)
{
    /// <summary>(layer, head) pairs from the highest score down (ties: lower layer, then lower head, first).</summary>
    public IEnumerable<(int Layer, int Head)> Ranked() =>
        from l in Enumerable.Range(0, Layers.Length)
        from h in Enumerable.Range(0, Score.GetLength(1))
        orderby Score[l, h] descending, l, h
        select (Layers[l], h);
}

/// <summary>The task's reported score with some heads removed.</summary>
public sealed record HeadAblation(string Name, (int Layer, int Head)[] Masked, double Score);

/// <summary>
/// Retrieval heads (Wu et al. 2024, "Retrieval Head Mechanistically Explains Long-Context Factuality";
/// docs/mechanisms.md#retrieval-heads). A copy event is a scored position whose label the model predicts right and
/// which occurs earlier in the same row's input (the model copies it from context: a passkey digit from the needle,
/// an MQAR value from its pair). A head retrieves at that event when its strongest attention weight falls on an
/// earlier position holding the label token. Its retrieval score is the fraction of copy events at which it
/// retrieves. Masking heads multiplies their output by 0 before o_proj.
/// </summary>
public static class RetrievalHeads
{
    /// <summary>Scores over the first <paramref name="maxExamples"/> rows of the slices (all attention layers).</summary>
    public static HeadScores Score(LanguageModel model, IReadOnlyList<TaskBatch> slices, int maxExamples, int batchSize = 64)
    {
        var attention = model.MixersOf<Attention>();
        if (attention.Count == 0) throw new MnemoException("retrieval heads: the model has no attention layer");
        int heads = model.Config.NumHeads;
        var hits = new double[attention.Count, heads];
        long events = 0;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            foreach (var (_, a) in attention) a.RecordWeights = true;
            using var noGrad = no_grad();
            int left = maxExamples;
            foreach (var slice in slices)
                for (int start = 0; start < slice.Count && left > 0; start += batchSize)
                {
                    using var quiet = Runtime.GcQuiet.Enter();                                     // as the evaluator does
                    using var scope = NewDisposeScope();
                    int[] rows = Enumerable.Range(start, Math.Min(Math.Min(batchSize, slice.Count - start), left)).ToArray();
                    left -= rows.Length;
                    var (inputs, labels) = MqarEvaluator.ToTensors(slice, rows);                  // [B, T]
                    var mask = labels.ne(TaskBatch.Ignore);
                    var at = mask.nonzero();                                                       // [N, 2]: (row, position)
                    var (row, position) = (at.select(1, 0), at.select(1, 1));
                    var target = labels.index([TensorIndex.Tensor(mask)]);                         // [N]
                    var predicted = model.ScoredLogits(inputs, mask).argmax(-1);
                    var copy = CopyEvents(inputs, row, position, target, predicted);
                    events += copy.sum().item<long>();
                    for (int l = 0; l < attention.Count; l++)
                    {
                        var perHead = Hits(inputs, row, position, target, copy, attention[l].Mixer.Weights!);
                        for (int h = 0; h < heads; h++) hits[l, h] += perHead[h];
                    }
                }
        }
        finally
        {
            foreach (var (_, a) in attention) a.RecordWeights = false;
            model.train(wasTraining);
        }
        var score = new double[attention.Count, heads];
        for (int l = 0; l < attention.Count; l++)
            for (int h = 0; h < heads; h++) score[l, h] = events == 0 ? double.NaN : hits[l, h] / events;
        return new HeadScores(attention.Select(a => a.Layer).ToArray(), score, events);
    }

    /// <summary>
    /// Which scored positions are copy events: predicted right, with the label present before the position in the
    /// row's input. inputs [B, T]; per scored position its row, position, label and prediction [N] → [N] bool.
    /// </summary>
    public static Tensor CopyEvents(Tensor inputs, Tensor row, Tensor position, Tensor target, Tensor predicted)
    {
        var before = arange(inputs.shape[1], device: inputs.device).unsqueeze(0).lt(position.unsqueeze(1));   // [N, T]
        var seen = inputs.index_select(0, row).eq(target.unsqueeze(1)).logical_and(before).any(1);
        return predicted.eq(target).logical_and(seen);
    }

    /// <summary>Per head, at how many copy events its strongest weight at the scored position falls on an earlier
    /// position holding the label. weights [B, H, T, T] → [H].</summary>
    public static double[] Hits(Tensor inputs, Tensor row, Tensor position, Tensor target, Tensor copy, Tensor weights)
    {
        using var scope = NewDisposeScope();
        long n = row.shape[0], h = weights.shape[1], keys = weights.shape[3];
        var at = position.view(n, 1, 1, 1).expand(n, h, 1, keys);
        var strongest = weights.index_select(0, row).gather(2, at).squeeze(2).argmax(-1);                               // [N, H]
        var token = inputs.index_select(0, row).gather(1, strongest);                                                    // [N, H]
        var retrieves = token.eq(target.unsqueeze(1)).logical_and(strongest.lt(position.unsqueeze(1))).logical_and(copy.unsqueeze(1));
        return retrieves.sum(dim: 0).to(ScalarType.Float64).data<double>().ToArray();
    }

    /// <summary>The task's reported score (accuracy, or exact match for passkey and S-NIAH) with the given heads
    /// removed; every mask is cleared afterwards.</summary>
    public static double ScoreWithout(LanguageModel model, ITask task, IReadOnlyList<TaskBatch> slices,
        IReadOnlyCollection<(int Layer, int Head)> masked)
    {
        var attention = model.MixersOf<Attention>();
        int heads = model.Config.NumHeads;
        try
        {
            foreach (var (layer, a) in attention)
            {
                var keep = ones(heads);
                foreach (var (_, h) in masked.Where(m => m.Layer == layer)) keep[h].fill_(0);
                a.HeadMask = keep;
            }
            var result = MqarEvaluator.Evaluate(model, slices, task: task);
            return task.ReportedScore() == "exact_match" ? result.ExactMatch : result.Accuracy;
        }
        finally
        {
            foreach (var (_, a) in attention)
            {
                a.HeadMask?.Dispose();
                a.HeadMask = null;
            }
        }
    }

    /// <summary>
    /// The ablation: the score with no head removed, with the <paramref name="k"/> top-scoring heads removed, and with
    /// k heads drawn uniformly from the others, <paramref name="draws"/> distinct sets (fewer when the others hold fewer;
    /// seeded by <paramref name="seed"/>).
    /// </summary>
    public static IReadOnlyList<HeadAblation> Ablate(LanguageModel model, ITask task, IReadOnlyList<TaskBatch> slices,
        HeadScores scores, int k, int draws, int seed)
    {
        var ranked = scores.Ranked().ToArray();
        if (k < 1 || k >= ranked.Length)
            throw new MnemoException($"--top {k}: must be between 1 and {ranked.Length - 1} " +
                $"(the model has {ranked.Length} attention heads)");
        var top = ranked[..k];
        var others = ranked[k..];
        var results = new List<HeadAblation>
        {
            new("none", [], ScoreWithout(model, task, slices, [])),
            new($"top {k}", top, ScoreWithout(model, task, slices, top)),
        };
        var rng = new Random(seed);
        var seen = new HashSet<string>();
        for (int attempt = 0; seen.Count < draws && attempt < 100 * draws; attempt++)
        {
            var drawn = others.OrderBy(_ => rng.Next()).Take(k).OrderBy(m => m.Layer).ThenBy(m => m.Head).ToArray();
            if (!seen.Add(string.Join(" ", drawn))) continue;                 // the same set again
            results.Add(new HeadAblation($"random {k} #{seen.Count}", drawn, ScoreWithout(model, task, slices, drawn)));
        }
        return results;
    }
}
