using System.Diagnostics;
using Mnemo.Evaluation;
using Mnemo.Memory.Episodic;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tasks;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>One way of reading the context, scored at one test length.</summary>
/// <param name="KeysPerQuery">mean keys an attention query read (per layer)</param>
/// <param name="MsPerToken">wall time of the whole evaluation over its tokens</param>
/// <param name="EventsPerExample">mean events the surprise rule made per example (0 for full attention)</param>
public sealed record EpisodicScore(string Variant, int SeqLen, long Examples, double ExactMatch, double Accuracy, double KeysPerQuery,
    double MsPerToken, double EventsPerExample);

/// <summary>
/// EM-LLM on a trained attention model's recall task, without retraining (docs/mechanisms.md#em-llm-episodic-memory): every
/// test slice read three ways, each in execution blocks over a KV cache: full attention (every key), a window (the init
/// tokens and the local window only) and EM-LLM (the window plus retrieved events).
/// </summary>
public static class EpisodicRecall
{
    public static readonly string[] Variants = ["full", "window", "em-llm"];

    /// <param name="rows">examples per batch</param>
    /// <param name="log">a line per finished (length, variant)</param>
    public static List<EpisodicScore> Run(LanguageModel model, ITask task, EpisodicConfig config, IReadOnlyList<string> variants,
        int rows = 50, Action<EpisodicScore>? log = null)
    {
        foreach (var v in variants)
            if (!Variants.Contains(v))
                throw new ArgumentException($"unknown variant \"{v}\"; allowed: {string.Join(", ", Variants)}", nameof(variants));
        if (EpisodicReader.Problem(model) is { } problem) throw new MnemoException(problem);
        var scores = new List<EpisodicScore>();
        foreach (var slice in task.TestBatches())
            foreach (var variant in variants)
            {
                double keys = 0, events = 0;
                long reads = 0;
                Tensor Read(Tensor inputs)
                {
                    reads++;
                    if (variant == "full")
                    {
                        keys += (inputs.shape[1] + 1) / 2.0;
                        return MqarEvaluator.Streamed(model, inputs, config.Block);   // the same blocks, every key read
                    }
                    var chosen = variant == "window"
                        ? config with { MemoryTokens = 0, Contiguity = 0, Refinement = RefinementKind.None }
                        : config;
                    var read = EpisodicReader.Read(model, inputs, chosen);
                    keys += read.KeysPerQuery;
                    events += read.Boundaries.Average(b => b.Count + 1.0);
                    return read.Logits;
                }
                var clock = Stopwatch.StartNew();
                var result = MqarEvaluator.Evaluate(model, [slice], rows, task, Read);
                clock.Stop();
                var score = new EpisodicScore(variant, slice.SeqLen, result.Examples, result.ExactMatch, result.Accuracy,
                    keys / Math.Max(1, reads), clock.Elapsed.TotalMilliseconds / Math.Max(1, result.Examples * slice.SeqLen),
                    events / Math.Max(1, reads));
                scores.Add(score);
                log?.Invoke(score);
            }
        return scores;
    }
}
