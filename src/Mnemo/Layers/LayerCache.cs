using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// What one layer carries between streaming calls: named tensors (conv tails, the memory state, a KV cache)
/// and the position of the next token. Tensors stored here are detached from every dispose scope and owned by
/// the cache: replacing one disposes the old, so a long stream keeps a constant number of live tensors.
/// A composite mixer gives each of its parts a <see cref="Child"/> cache (their entry names would collide).
/// </summary>
public sealed class LayerCache : IDisposable
{
    readonly Dictionary<string, Tensor> _tensors = [];
    readonly Dictionary<string, LayerCache> _children = [];
    readonly Dictionary<string, Tensor> _derived = [];
    readonly bool _keepGraph;

    /// <param name="keepGraph">keep the autograd graph of stored tensors: for a mixer whose full (training) forward is
    /// itself a recurrence over pieces (Titans MAC's segments), so gradients flow through the carried state</param>
    public LayerCache(bool keepGraph = false) => _keepGraph = keepGraph;

    /// <summary>Index of the next token (set by the model before each call).</summary>
    public long Position { get; set; }

    public Tensor? Get(string name) => _tensors.GetValueOrDefault(name);

    public void Set(string name, Tensor value)
    {
        // A fresh handle either way: the same tensor may be stored under two names (weights = chunk-start weights).
        var kept = (_keepGraph ? value.alias() : value.detach()).DetachFromDisposeScope();
        if (_tensors.TryGetValue(name, out var old) && !ReferenceEquals(old, kept)) old.Dispose();
        _tensors[name] = kept;
    }

    /// <summary>
    /// A tensor made from the layer's weights, not its state (several projections' weights side by side): built by
    /// <paramref name="build"/> at first use and kept for the cache's life, so a decoded token does not rebuild it. It is
    /// not counted in <see cref="Bytes"/>. A cache therefore serves one stream of one set of weights: a model whose
    /// weights change (a training step) starts a new cache, as every caller does.
    /// </summary>
    public Tensor Derived(string name, Func<Tensor> build)
    {
        if (_derived.TryGetValue(name, out var kept)) return kept;
        using (NewDisposeScope()) kept = build().detach().DetachFromDisposeScope();
        return _derived[name] = kept;
    }

    /// <summary>Valid entries in a preallocated KV buffer ("k", "v"; see <see cref="KvBuffer"/>).</summary>
    public long KvLength { get; set; }

    /// <summary>The cache of a named part of this layer (created on first use, disposed with this one). The owner
    /// sets its <see cref="Position"/> before each call.</summary>
    public LayerCache Child(string name)
    {
        if (!_children.TryGetValue(name, out var child)) _children[name] = child = new LayerCache(_keepGraph);
        return child;
    }

    /// <summary>Bytes held by the cache's tensors (children included).</summary>
    public long Bytes => _tensors.Values.Sum(t => t.numel() * t.ElementSize) + _children.Values.Sum(c => c.Bytes);

    public void Dispose()
    {
        foreach (var t in _tensors.Values.Concat(_derived.Values)) t.Dispose();
        _tensors.Clear();
        _derived.Clear();
        foreach (var c in _children.Values) c.Dispose();
        _children.Clear();
    }
}

/// <summary>A token mixer that can process a sequence in pieces, carrying its state in a <see cref="LayerCache"/>.</summary>
public interface IStreamingMixer
{
    /// <summary>x [B, T, D] → [B, T, D]. With a cache, continues from and updates it; without, starts fresh.</summary>
    Tensor Forward(Tensor x, LayerCache? cache);
}

/// <summary>
/// An attention KV cache that grows by doubling: appending a token copies only that token (amortised), where a
/// concatenation per token would copy the whole context every step.
/// </summary>
static class KvBuffer
{
    /// <summary>Appends k, v [B, H, T, Dh] and returns views of every cached key and value [B, H, length, Dh].</summary>
    public static (Tensor K, Tensor V) Append(LayerCache cache, Tensor k, Tensor v)
    {
        long length = cache.KvLength, t = k.shape[2], needed = length + t;
        var keys = cache.Get("k");
        if (keys is null || keys.shape[2] < needed)
        {
            long capacity = Math.Max(needed, keys is null ? needed : 2 * keys.shape[2]);
            Grow(cache, "k", k, capacity, length);
            Grow(cache, "v", v, capacity, length);
            keys = cache.Get("k")!;
        }
        var values = cache.Get("v")!;
        using (no_grad())
        {
            keys.narrow(2, length, t).copy_(k);
            values.narrow(2, length, t).copy_(v);
        }
        cache.KvLength = needed;
        return (keys.narrow(2, 0, needed), values.narrow(2, 0, needed));
    }

    /// <summary>Starts a cache holding <paramref name="k"/>, <paramref name="v"/> with room for <paramref name="capacity"/>
    /// tokens.</summary>
    public static void Fill(LayerCache cache, Tensor k, Tensor v, long capacity)
    {
        cache.KvLength = 0;
        Grow(cache, "k", k, capacity, 0);
        Grow(cache, "v", v, capacity, 0);
        Append(cache, k, v);
    }

    static void Grow(LayerCache cache, string name, Tensor like, long capacity, long keep)
    {
        var buffer = empty([like.shape[0], like.shape[1], capacity, like.shape[3]], like.dtype, like.device);
        if (keep > 0) using (no_grad()) buffer.narrow(2, 0, keep).copy_(cache.Get(name)!.narrow(2, 0, keep));
        cache.Set(name, buffer);
    }
}
