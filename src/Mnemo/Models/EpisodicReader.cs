using Mnemo.Layers;
using Mnemo.Memory.Episodic;
using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>What <see cref="EpisodicReader.Read"/> returns.</summary>
/// <param name="Logits">[B, T, V], as the full forward's</param>
/// <param name="Boundaries">each row's event boundaries (first positions of the events after the first)</param>
/// <param name="KeysPerQuery">mean number of keys a query read, over the attention layers and every query</param>
public sealed record EpisodicRead(Tensor Logits, IReadOnlyList<IReadOnlyList<int>> Boundaries, double KeysPerQuery);

/// <summary>
/// EM-LLM over a trained model, without retraining (Fountas et al. 2024; docs/mechanisms.md#em-llm-episodic-memory): the
/// model streams its input in execution blocks; after each block the surprise of its tokens (from the model's own
/// predictions) opens new events, optionally refined on the key-similarity graph, and in the next block every attention
/// layer reads the init tokens, the local window and the events that match the block (<see cref="EventRetrieval"/>).
/// </summary>
public static class EpisodicReader
{
    public static EpisodicRead Read(LanguageModel model, Tensor tokens, EpisodicConfig c)
    {
        if (tokens.dim() != 2)
            throw new ArgumentException($"tokens must be [B, T], got [{string.Join(", ", tokens.shape)}]", nameof(tokens));
        if (Problem(model) is { } problem) throw new ArgumentException(problem, nameof(model));
        var layers = model.MixersOf<Attention>();
        int b = (int)tokens.shape[0], length = (int)tokens.shape[1];
        var boundaries = Enumerable.Range(0, b).Select(_ => new List<int>()).ToArray();
        var surprise = Enumerable.Range(0, b).Select(_ => new List<double> { double.NaN }).ToArray();   // s_0 undefined
        var selection = new Selection(boundaries, c);
        using var cache = model.NewCache();
        var pieces = new List<Tensor>();
        try
        {
            foreach (var (_, layer) in layers) layer.KeySelection = selection;
            Tensor? previous = null;                                                     // log p of the last position [B, V]
            for (int start = 0; start < length; start += c.Block)
            {
                // Reading a long context block by block would hold the finalizers for long: let them run between blocks,
                // where no native call is in flight, and keep each block quiet (see GcQuiet).
                GcQuiet.Renew();
                using var quiet = GcQuiet.Enter();
                using var scope = NewDisposeScope();
                int count = Math.Min(c.Block, length - start);
                var piece = tokens.narrow(1, start, count);                              // [B, n]
                var logits = model.Step(piece, cache);                                   // [B, n, V]
                var logp = logits.to(ScalarType.Float64).log_softmax(-1);
                // s_t = −log p(x_t | x_<t): position t's token under the prediction made at t − 1.
                var predicted = previous is null
                    ? logp.narrow(1, 0, count - 1)
                    : cat([previous.unsqueeze(1), logp.narrow(1, 0, count - 1)], 1);
                var targets = previous is null ? piece.narrow(1, 1, count - 1) : piece;
                var s = predicted.gather(2, targets.unsqueeze(-1)).squeeze(-1).neg().cpu();   // [B, n or n − 1]
                var values = s.data<double>().ToArray();
                int known = (int)s.shape[1];
                for (int row = 0; row < b; row++)
                {
                    int from = surprise[row].Count;
                    surprise[row].AddRange(values.Skip(row * known).Take(known));
                    int last = boundaries[row].Count == 0 ? 0 : boundaries[row][^1];
                    var found = SurpriseBoundaries.Find(surprise[row], from, last, c.Gamma, c.SurpriseWindow, c.MinEvent, c.MaxEvent);
                    if (found.Count > 0 && c.Refinement != RefinementKind.None)
                        found = Refine(cache, layers.Select(l => l.Layer).ToArray(), row, found, last, start + count, c);
                    boundaries[row].AddRange(found);
                }
                previous?.Dispose();
                previous = logp.select(1, -1).DetachFromDisposeScope();
                pieces.Add(logits.DetachFromDisposeScope());
            }
            previous?.Dispose();
        }
        finally
        {
            foreach (var (_, layer) in layers) layer.KeySelection = null;
        }
        var all = cat(pieces, 1);
        foreach (var p in pieces) p.Dispose();
        return new EpisodicRead(all, boundaries, selection.KeysPerQuery);
    }

    /// <summary>Why EM-LLM cannot read this model, or null.</summary>
    public static string? Problem(LanguageModel model) =>
        model.MixersOf<Attention>().Count == 0
            ? "EM-LLM reads a model's attention layers, and this model has none (model.mixer or layer_mixers needs attention)"
            : model.SegmentMemory is not null
                ? "EM-LLM reads one stream of keys; this model restarts its backbone every segment (model.segments)"
                : null;

    /// <summary>Refines new boundaries on A_ij = Σ over the attention layers and heads of k_i · k_j (keys as cached).</summary>
    static List<int> Refine(ModelCache cache, int[] layers, int row, List<int> found, int previous, int end, EpisodicConfig c)
    {
        using var scope = NewDisposeScope();
        int offset = BoundaryRefinement.WindowStart(previous, found[0]);
        Tensor? adjacency = null;
        foreach (int layer in layers)
        {
            var k = cache.Layers[layer].Get("k")!.select(0, row).narrow(1, offset, end - offset).to(ScalarType.Float64);   // [H, n, Dh]
            var a = k.matmul(k.transpose(1, 2)).sum([0]);                                  // [n, n]
            adjacency = adjacency is null ? a : adjacency + a;
        }
        return BoundaryRefinement.Refine(adjacency!, offset, found, previous, c.MinEvent, c.Refinement);
    }

    /// <summary>Every attention layer's key selection for the current block, and a count of what it let through.</summary>
    sealed class Selection(IReadOnlyList<IReadOnlyList<int>> boundaries, EpisodicConfig config) : IKeySelection
    {
        double _keys, _queries;

        public double KeysPerQuery => _queries == 0 ? 0 : _keys / _queries;

        public Tensor Select(Tensor q, Tensor k, long past)
        {
            var mask = EventRetrieval.Mask(q, k, past, boundaries, config);             // [B, 1, T, past + T]
            long t = q.shape[2];
            using var causal = Attention.CausalMask(t, past, 0, q.device);
            using var read = mask.logical_and(causal);
            _keys += read.sum().item<long>();
            _queries += q.shape[0] * t;
            return mask;
        }

        /// <summary>The local window's first position, past − n_local, when keys lie before it.</summary>
        public long? MovedBefore(long past) => config.Reposition && past - config.LocalTokens > 0 ? past - config.LocalTokens : null;
    }
}
