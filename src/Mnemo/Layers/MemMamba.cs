using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// MemMamba's note block before a Mamba-2 layer (Wang et al. 2025, arXiv 2510.03279; docs/mechanisms.md#memmamba), mixer
/// "memmamba". Each token has an importance i_t = σ(w_i · x_t); a token with i_t &gt; τ1 writes a note s_t = W_s x_t to
/// the layer's pool, which keeps the last P notes. Token t reads the notes written strictly before it:
/// <code>
/// c_t = Σ_j softmax_j((W_q x_t) · (W_k s_j) / √d_s) · i_j W_v s_j,   x'_t = x_t + σ(W_g x_t) ⊙ c_t,   y = Mamba2(x')
/// </code>
/// (c_t = 0 before the first note). Weighting a note's value by its importance gives w_i a gradient through the hard
/// selection. The paper's cross-layer attention and its state-sufficiency trigger τ2 are not built: every token reads
/// the pool, and the learned gate decides how much.
/// </summary>
public sealed class MemMamba : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly Mamba2 mamba;
    readonly Projection importance, note_proj, q_proj, k_proj, v_proj, g_proj;
    readonly int _pool, _noteDim;
    readonly double _threshold;

    public MemMamba(ModelConfig c, MatrixMemoryConfig matrix, MemMambaConfig notes) : base(nameof(MemMamba))
    {
        _pool = notes.PoolSize;
        _noteDim = notes.NoteDim == 0 ? Math.Max(1, c.DModel / 2) : notes.NoteDim;
        _threshold = notes.Threshold;
        mamba = new Mamba2(c, matrix);
        importance = new Projection(c.DModel, 1);
        note_proj = new Projection(c.DModel, _noteDim, hasBias: false);
        q_proj = new Projection(c.DModel, _noteDim, hasBias: false);
        k_proj = new Projection(_noteDim, _noteDim, hasBias: false);
        v_proj = new Projection(_noteDim, c.DModel, hasBias: false);
        g_proj = new Projection(c.DModel, c.DModel);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <param name="x">[B, T, D]</param>
    /// <returns>[B, T, D]</returns>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        var mambaCache = cache?.Child("mamba");
        if (mambaCache is not null) mambaCache.Position = cache!.Position;
        return mamba.Forward(ReadNotes(x, cache), mambaCache).MoveToOuterDisposeScope();
    }

    /// <summary>x' = x + σ(W_g x) ⊙ c: the input [B, T, D] with the notes it read; with a cache, the pool is carried.</summary>
    public Tensor ReadNotes(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0];
        var weight = importance.forward(x).squeeze(-1).sigmoid();                      // i_t [B, T]
        var written = weight.detach().gt(_threshold);                                   // [B, T]
        var notes = note_proj.forward(x);                                               // s_t [B, T, d_s]
        var keys = k_proj.forward(notes);                                               // [B, T, d_s]
        var values = v_proj.forward(notes) * weight.unsqueeze(-1);                      // [B, T, D]
        // The pool carried from earlier calls comes first: its notes all precede this piece (padding is flagged unwritten).
        long held = 0;
        if (cache?.Get("keys") is { } pastKeys)
        {
            held = pastKeys.shape[1];
            keys = cat([pastKeys, keys], 1);                                            // [B, held + T, d_s]
            values = cat([cache.Get("values")!, values], 1);
            written = cat([cache.Get("written")!, written], 1);
        }
        var allowed = PoolMask(written, held, _pool);                                   // [B, T, held + T]
        var scores = q_proj.forward(x).matmul(keys.transpose(1, 2)) / Math.Sqrt(_noteDim);
        scores = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity);
        var any = allowed.any(-1, keepdim: true);                                       // [B, T, 1]
        var read = where(any, scores, zeros_like(scores)).softmax(-1).matmul(values);   // [B, T, D]
        read = where(any, read, zeros_like(read));
        if (cache is not null) KeepPool(cache, keys, values, written);
        return (x + g_proj.forward(x).sigmoid() * read).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Which notes each of the T queries reads: key j (of held + T, the first <paramref name="held"/> carried in the pool,
    /// all written) when it was written, comes strictly before the query (key held + i is the query's own position), and is
    /// among the last <paramref name="pool"/> written before it. written [B, held + T] → bool [B, T, held + T].
    /// </summary>
    public static Tensor PoolMask(Tensor written, long held, int pool)
    {
        using var scope = NewDisposeScope();
        long n = written.shape[1], t = n - held;
        var count = written.to(ScalarType.Int64).cumsum(1);                              // notes written up to and including j
        var rank = count - written.to(ScalarType.Int64);                                 // j's index among the written notes
        var before = count.narrow(1, held, t) - written.narrow(1, held, t).to(ScalarType.Int64);   // written before query i
        var position = arange(n, device: written.device).unsqueeze(0);                   // [1, n]
        var query = arange(held, n, device: written.device).unsqueeze(1);                // [T, 1]
        var earlier = position.lt(query).unsqueeze(0);                                  // [1, T, n]
        var recent = rank.unsqueeze(1).ge(before.unsqueeze(2) - pool);                  // [B, T, n]
        return written.unsqueeze(1).logical_and(earlier).logical_and(recent).MoveToOuterDisposeScope();
    }

    /// <summary>Keeps the last P written notes (keys and weighted values) of each row for the next call.</summary>
    void KeepPool(LayerCache cache, Tensor keys, Tensor values, Tensor written)
    {
        long b = keys.shape[0];
        // Rows write different numbers of notes; each row keeps its own last P (fewer at the start: the pool is then
        // right-aligned and padded in front with notes that are never read, their keys zero and their written flag false).
        var flags = written.to(ScalarType.Int64);
        long keep = Math.Min(_pool, flags.sum(1).max().item<long>());
        if (keep == 0) return;
        var order = (flags * arange(1, flags.shape[1] + 1, device: flags.device).unsqueeze(0)).argsort(1, descending: true)
            .narrow(1, 0, keep).flip(1);                                                 // the last `keep` written, in order [B, keep]
        var taken = flags.gather(1, order).to(ScalarType.Bool);                         // padding where a row wrote fewer
        cache.Set("keys", keys.gather(1, order.unsqueeze(-1).expand(b, keep, keys.shape[2])) * taken.unsqueeze(-1));
        cache.Set("values", values.gather(1, order.unsqueeze(-1).expand(b, keep, values.shape[2])) * taken.unsqueeze(-1));
        cache.Set("written", taken);
    }
}
