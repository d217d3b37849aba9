using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// A pool of notes about important tokens, read by attention: MemMamba's note block (docs/mechanisms.md#memmamba) and
/// the latent pools of contextual memory reweaving (docs/mechanisms.md#contextual-memory-reweaving). A source token has
/// an importance i_t = σ(w_i · x_t); one with i_t &gt; τ writes a note s_t = W_s x_t, and the pool keeps the last P.
/// Query token t reads the notes written strictly before it:
/// <code>
/// c_t = Σ_j softmax_j((W_q u_t) · (W_k s_j) / √d_s) · i_j W_v s_j        (c_t = 0 before the first note)
/// </code>
/// where u is the query stream (the source itself for MemMamba). Weighting a note's value by its importance gives w_i a
/// gradient through the hard selection.
/// </summary>
public sealed class NotePool : nn.Module
{
    readonly Projection importance, note_proj, q_proj, k_proj, v_proj;
    readonly int _pool, _noteDim;
    readonly double _threshold;

    /// <param name="queryDim">width of the query stream u</param>
    /// <param name="sourceDim">width of the source stream x the notes are taken from</param>
    /// <param name="noteDim">d_s, the width of a note</param>
    /// <param name="outputDim">width of the read c</param>
    /// <param name="pool">P, the notes a token reads</param>
    /// <param name="threshold">τ on the importance</param>
    public NotePool(long queryDim, long sourceDim, int noteDim, long outputDim, int pool, double threshold) : base(nameof(NotePool))
    {
        _pool = pool;
        _noteDim = noteDim;
        _threshold = threshold;
        importance = new Projection(sourceDim, 1);
        note_proj = new Projection(sourceDim, noteDim, hasBias: false);
        q_proj = new Projection(queryDim, noteDim, hasBias: false);
        k_proj = new Projection(noteDim, noteDim, hasBias: false);
        v_proj = new Projection(noteDim, outputDim, hasBias: false);
        RegisterComponents();
    }

    /// <summary>
    /// c [B, T, outputDim]: what each query token u [B, T, Dq] reads of the notes from source x [B, T, Dx] (the same
    /// positions); with a cache, the pool of earlier calls comes first and the updated pool is kept.
    /// </summary>
    public Tensor Read(Tensor query, Tensor source, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        var weight = importance.forward(source).squeeze(-1).sigmoid();                 // i_t [B, T]
        var written = weight.detach().gt(_threshold);                                   // [B, T]
        var notes = note_proj.forward(source);                                          // s_t [B, T, d_s]
        var keys = k_proj.forward(notes);                                               // [B, T, d_s]
        var values = v_proj.forward(notes) * weight.unsqueeze(-1);                      // [B, T, D_out]
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
        var scores = q_proj.forward(query).matmul(keys.transpose(1, 2)) / Math.Sqrt(_noteDim);
        scores = scores.masked_fill(allowed.logical_not(), double.NegativeInfinity);
        var any = allowed.any(-1, keepdim: true);                                       // [B, T, 1]
        var read = where(any, scores, zeros_like(scores)).softmax(-1).matmul(values);   // [B, T, D_out]
        read = where(any, read, zeros_like(read));
        if (cache is not null) KeepPool(cache, keys, values, written);
        return read.MoveToOuterDisposeScope();
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
