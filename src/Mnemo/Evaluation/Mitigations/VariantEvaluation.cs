using Mnemo.Models;
using Mnemo.Tasks;
using static TorchSharp.torch;

namespace Mnemo.Evaluation.Mitigations;

/// <summary>One variant's scores on the final-evaluation slices.</summary>
public sealed record VariantResult(string Name, EvalResult Result);

/// <summary>Mean over examples of the largest head's ‖S_t‖_F at every position of one layer, under one variant.</summary>
public sealed record StateNormTrace(string Variant, int Layer, double[] Norms);

/// <summary>
/// A model's state norms: the largest ‖S_t‖_F per layer on the validation examples (at
/// <paramref name="ValidationSeqLen"/>, the scale of every state-norm cap) and, as trained, at
/// <paramref name="TraceSeqLen"/>, the longest final-evaluation length; with the per-position traces there (empty
/// when no trace examples were asked for; MaxAtLongest then too).
/// </summary>
public sealed record StateNormSummary(int ValidationSeqLen, double[] MaxAtValidation, int TraceSeqLen, int TraceExamples,
    double[] MaxAtLongest, IReadOnlyList<StateNormTrace> Traces);

/// <summary>
/// Scores a trained model under each <see cref="EvalVariant"/> (Stuffed Mamba's training-free mitigations,
/// docs/mechanisms.md#state-collapse-mitigations) and records its state norms. τ per layer comes from the validation
/// examples (never the longer test lengths); the traces are taken at the longest final-evaluation length, as trained
/// and under each variant that runs the step form. The model's kernels are as trained again afterwards.
/// </summary>
public static class VariantEvaluation
{
    public static (IReadOnlyList<VariantResult> Scores, StateNormSummary Norms) Run(LanguageModel model, TaskBatch validation,
        ITask final, EvalVariants config, Action<VariantResult>? progress = null, CancellationToken cancel = default)
    {
        int layers = model.Config.NumLayers;
        if (MemoryEval.Memories(model).Count == 0)
            throw new MnemoException($"{model.Config.Mixer} has no matrix memory: the evaluation variants apply to Mamba-2, GLA, " +
                "RetNet, (Gated) DeltaNet and linear attention");

        var atValidation = Norms(model, validation, config.NormExamples, _ => MemoryEvalOptions.None);
        var maxAtValidation = PerLayer(atValidation, layers, l => l.Max(l.Positions));
        Func<int, MemoryEvalOptions> OptionsOf(EvalVariant v) => layer => v.Options(maxAtValidation[layer]);

        var slices = final.TestBatches();
        var longest = slices.MaxBy(s => s.SeqLen)!;
        var traces = new List<StateNormTrace>();
        double[] maxAtLongest = [];
        if (config.TraceExamples > 0)
        {
            var asTrained = Norms(model, longest, config.TraceExamples, _ => MemoryEvalOptions.None);
            maxAtLongest = PerLayer(asTrained, layers, l => l.Max(l.Positions));
            foreach (var v in config.Variants.Where(v => v.Traceable))
            {
                var options = OptionsOf(v);
                bool unchanged = Enumerable.Range(0, layers).All(l => options(l).ChangesNothing);
                var norms = unchanged ? asTrained : Norms(model, longest, config.TraceExamples, options);
                traces.AddRange(norms.Select(l => new StateNormTrace(v.Name, l.Layer, l.MeanOfMaxHead())));
            }
        }

        var scores = new List<VariantResult>();
        try
        {
            foreach (var v in config.Variants)
            {
                cancel.ThrowIfCancellationRequested();
                MemoryEval.Apply(model, OptionsOf(v));
                var score = new VariantResult(v.Name, MqarEvaluator.Evaluate(model, slices, task: final));
                scores.Add(score);
                progress?.Invoke(score);
            }
        }
        finally
        {
            MemoryEval.Apply(model, MemoryEvalOptions.None);
        }
        return (scores, new StateNormSummary(validation.SeqLen, maxAtValidation, longest.SeqLen,
            config.TraceExamples == 0 ? 0 : Math.Min(config.TraceExamples, longest.Count), maxAtLongest, traces));
    }

    /// <summary>Per-layer norms over <paramref name="examples"/> rows spread over the slice: passkey's even depths put
    /// example i's needle at depth (i + 0.5)/n, so the first rows alone would all have shallow needles.</summary>
    static IReadOnlyList<LayerStateNorms> Norms(LanguageModel model, TaskBatch slice, int examples, Func<int, MemoryEvalOptions> options)
    {
        int n = Math.Min(examples, slice.Count);
        int[] rows = Enumerable.Range(0, n).Select(i => (int)((long)i * slice.Count / n)).ToArray();
        using var scope = NewDisposeScope();
        var (inputs, _) = MqarEvaluator.ToTensors(slice, rows);
        return MemoryEval.StateNorms(model, inputs, options);
    }

    static double[] PerLayer(IReadOnlyList<LayerStateNorms> norms, int layers, Func<LayerStateNorms, double> f)
    {
        var result = new double[layers];
        foreach (var l in norms) result[l.Layer] = f(l);
        return result;
    }
}
