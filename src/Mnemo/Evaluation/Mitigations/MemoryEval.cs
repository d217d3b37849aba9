using System.Text.RegularExpressions;
using Mnemo.Layers;
using Mnemo.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Evaluation.Mitigations;

/// <summary>Per-position state norms of one layer: ‖S_t‖_F for every example, position and head.</summary>
/// <param name="Layer">the layer's index in the model</param>
/// <param name="Norms">[example][position][head]</param>
public sealed record LayerStateNorms(int Layer, double[][][] Norms)
{
    public int Positions => Norms.Length == 0 ? 0 : Norms[0].Length;
    public int Heads => Positions == 0 ? 0 : Norms[0][0].Length;

    /// <summary>Mean over examples of the largest head's norm at each position (a plot's line).</summary>
    public double[] MeanOfMaxHead() => Enumerable.Range(0, Positions).Select(t => Norms.Average(e => e[t].Max())).ToArray();

    /// <summary>Mean over examples of head h's norm at each position.</summary>
    public double[] MeanOfHead(int h) => Enumerable.Range(0, Positions).Select(t => Norms.Average(e => e[t][h])).ToArray();

    /// <summary>The largest norm of any example and head at positions &lt; <paramref name="upTo"/>.</summary>
    public double Max(int upTo) => Norms.Max(e => e.Take(upTo).Max(p => p.Max()));
}

/// <summary>
/// Sets <see cref="MemoryEvalOptions"/> on the matrix memories of a trained model (no retraining), as a
/// <see cref="MitigatedKernel"/> on each layer, and measures per-position state norms (Stuffed Mamba's state-collapse
/// diagnostic, docs/mechanisms.md#state-collapse-mitigations).
/// </summary>
public static partial class MemoryEval
{
    /// <summary>The model's matrix memories with their layer index, in layer order.</summary>
    public static IReadOnlyList<(int Layer, IMatrixMemoryLayer Memory)> Memories(LanguageModel model) =>
        [.. model.MixersOf<IMatrixMemoryLayer>().Where(m => m.Mixer.RunsKernel)];

    /// <summary>Gives every matrix memory the same options; returns how many layers took them.</summary>
    public static int Apply(LanguageModel model, MemoryEvalOptions options) => Apply(model, _ => options);

    /// <summary>Options per layer (e.g. a per-layer norm cap τ); returns how many layers took them.</summary>
    public static int Apply(LanguageModel model, Func<int, MemoryEvalOptions> optionsForLayer)
    {
        var memories = Memories(model);
        foreach (var (layer, memory) in memories)
        {
            var options = optionsForLayer(layer);
            options.Validate();
            memory.Kernel = options == MemoryEvalOptions.None ? DirectMatrixKernel.Instance : new MitigatedKernel(options);
        }
        return memories.Count;
    }

    /// <summary>
    /// Runs the model's full forward over tokens [B, T] in the step form, recording ‖S_t‖_F per layer and head at
    /// every position, under <paramref name="options"/> (default: as trained; a window cannot be recorded). The
    /// model's own kernels are restored afterwards. With a <paramref name="cache"/>, the final states stay in it.
    /// </summary>
    public static IReadOnlyList<LayerStateNorms> StateNorms(LanguageModel model, Tensor tokens, MemoryEvalOptions? options = null,
        ModelCache? cache = null) => StateNorms(model, tokens, _ => options ?? MemoryEvalOptions.None, cache);

    /// <summary><see cref="StateNorms(LanguageModel, Tensor, MemoryEvalOptions?, ModelCache?)"/> with options per layer
    /// (e.g. a per-layer norm cap τ).</summary>
    public static IReadOnlyList<LayerStateNorms> StateNorms(LanguageModel model, Tensor tokens,
        Func<int, MemoryEvalOptions> optionsForLayer, ModelCache? cache = null)
    {
        var memories = Memories(model);
        var saved = memories.Select(m => m.Memory.Kernel).ToArray();
        try
        {
            Apply(model, layer => optionsForLayer(layer) with { RecordStateNorms = true });
            return Recorded(model, tokens, cache);
        }
        finally
        {
            for (int i = 0; i < memories.Count; i++) memories[i].Memory.Kernel = saved[i];
        }
    }

    /// <summary>
    /// <see cref="StateNorms(LanguageModel, Tensor, MemoryEvalOptions?, ModelCache?)"/> with the options already set on the
    /// model (per layer; each must record norms):
    /// one forward in evaluation mode without gradients, then every layer's recorded norms.
    /// </summary>
    public static IReadOnlyList<LayerStateNorms> Recorded(LanguageModel model, Tensor tokens, ModelCache? cache = null)
    {
        var memories = Memories(model);
        if (memories.Count == 0) throw new MnemoException("the model has no matrix-memory layer whose state norms can be recorded");
        var kernels = memories.Select(m => m.Memory.Kernel as MitigatedKernel).ToArray();
        if (kernels.Any(k => k is not { Options.RecordStateNorms: true }))
            throw new MnemoException("set RecordStateNorms on every memory before recording");
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using (no_grad())
            using (NewDisposeScope())
            {
                if (cache is null) model.Hidden(tokens);
                else model.Step(tokens, cache);
            }
            return memories.Zip(kernels, (m, k) => new LayerStateNorms(m.Layer, ToArrays(k!.LastStateNorms!))).ToList();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    static double[][][] ToArrays(Tensor norms)
    {
        long b = norms.shape[0], t = norms.shape[1], h = norms.shape[2];
        var flat = norms.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        return Enumerable.Range(0, (int)b).Select(i => Enumerable.Range(0, (int)t)
            .Select(p => flat.AsSpan((int)((i * t + p) * h), (int)h).ToArray()).ToArray()).ToArray();
    }
}
