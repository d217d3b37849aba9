using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// What one layer carries between streaming calls: named tensors (conv tails, the memory state, a KV cache)
/// and the position of the next token. Tensors stored here are detached from every dispose scope and owned by
/// the cache: replacing one disposes the old, so a long stream keeps a constant number of live tensors.
/// </summary>
public sealed class LayerCache : IDisposable
{
    readonly Dictionary<string, Tensor> _tensors = [];

    /// <summary>Index of the next token (set by the model before each call).</summary>
    public long Position { get; set; }

    public Tensor? Get(string name) => _tensors.GetValueOrDefault(name);

    public void Set(string name, Tensor value)
    {
        var kept = value.detach().DetachFromDisposeScope();
        if (_tensors.TryGetValue(name, out var old) && !ReferenceEquals(old, kept)) old.Dispose();
        _tensors[name] = kept;
    }

    /// <summary>Bytes held by the cache's tensors.</summary>
    public long Bytes => _tensors.Values.Sum(t => t.numel() * t.ElementSize);

    public void Dispose()
    {
        foreach (var t in _tensors.Values) t.Dispose();
        _tensors.Clear();
    }
}

/// <summary>A token mixer that can process a sequence in pieces, carrying its state in a <see cref="LayerCache"/>.</summary>
public interface IStreamingMixer
{
    /// <summary>x [B, T, D] → [B, T, D]. With a cache, continues from and updates it; without, starts fresh.</summary>
    Tensor Forward(Tensor x, LayerCache? cache);
}
