using Mnemo.Memory.Deep.Rules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Titans MAC, memory as context (Behrouz et al. 2024, Eq. 21–25; docs/mechanisms.md#titans-architectures), mixer "titans_mac". The
/// sequence is cut into segments S of titans.segment_size tokens; per segment, with M the Titans memory
/// (<see cref="DeepMemoryMixer"/>) as it stood before the segment:
/// <code>
/// h = M*(q),  q from S            read-only retrieval (<see cref="DeepMemoryMixer.Retrieve"/>)
/// y = Attn([P ‖ h ‖ S])           queries from S; token i sees P, h_j and S_j for j ≤ i (same segment)
/// M ← M written with y            keys, values, gates all from y (Eq. 24: the attention output is stored)
/// o = out_norm(y) ⊙ σ(gate_norm(M*(y)))
/// </code>
/// Decisions. h_j is masked causally like S_j: h_j reads q_j, which depends on token j, so seeing it earlier would
/// leak the future (the paper shows h wholly visible). The write is the deep memory's chunk form with its chunk
/// size set to the segment size and aligned with the segments, so every gradient of a segment is taken at the
/// weights from before it — exactly the weights the next segment retrieves with; M*(y_i) reads the weights after
/// y_1 … y_i (causal, where the paper's M*_t(y_t) reads after the whole segment). Attention spans one segment
/// (O(C²); the model's window is not used); positions are rotary at each token's position in the sequence (h_j shares token j's), P has
/// none. Streaming keeps the segment's keys (h and S, interleaved) in a KV buffer that restarts at each segment.
/// </summary>
public sealed class MemoryAsContext : nn.Module<Tensor, Tensor>, IStreamingMixer
{
    readonly Attention attention;
    readonly DeepMemoryMixer memory;
    readonly Parameter? persistent_memory;
    readonly BranchGate output_gate;
    readonly int _segment;

    /// <param name="c">the model's common dims</param>
    /// <param name="deep">model.deep, the memory (its chunk size is the segment size)</param>
    /// <param name="titans">model.titans</param>
    public MemoryAsContext(ModelConfig c, DeepMemoryConfig deep, TitansConfig titans) : base(nameof(MemoryAsContext))
    {
        _segment = titans.SegmentSize;
        attention = new Attention(c with { ShortConv = false }, new AttentionConfig { Window = 0 });
        memory = new DeepMemoryMixer(c, deep with { ChunkSize = titans.SegmentSize }, Titans.Rule);
        persistent_memory = PersistentPrefix.Create(c, titans);
        output_gate = new BranchGate(c.DModel, c.NormEps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <param name="x">[B, T, D]</param>
    /// <returns>[B, T, D]</returns>
    public Tensor Forward(Tensor x, LayerCache? cache)
    {
        using var scope = NewDisposeScope();
        long t = x.shape[1], position = cache?.Position ?? 0;
        // Even the full forward is a recurrence over segments through the memory: without a stream, carry the memory
        // in a scratch cache that keeps the autograd graph. A whole segment needs no KV buffer, a stream does.
        using var scratch = cache is null ? new LayerCache(keepGraph: true) : null;
        var memoryCache = cache?.Child("memory") ?? scratch!;
        var segmentKeys = cache?.Child("attention");
        var outputs = new List<Tensor>();
        for (long start = 0; start < t;)
        {
            long at = position + start, offset = at % _segment, n = Math.Min(_segment - offset, t - start);
            var piece = x.narrow(1, start, n);                                           // [B, n, D]
            memoryCache.Position = at;
            var h = memory.Retrieve(piece, memoryCache);                                 // [B, n, D]
            var y = Attend(piece, h, segmentKeys, at, offset);                           // [B, n, D]
            var m = memory.Forward(y, memoryCache);                                      // writes y, reads M*(y)
            outputs.Add(output_gate.forward(y, m));
            start += n;
        }
        return cat(outputs, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Attention of the n segment tokens x [B, n, D] (starting at sequence position <paramref name="at"/>,
    /// <paramref name="offset"/> tokens into their segment) over P, the segment's retrievals h [B, n, D] and tokens so far.
    /// </summary>
    Tensor Attend(Tensor x, Tensor h, LayerCache? segmentKeys, long at, long offset)
    {
        long b = x.shape[0], n = x.shape[1];
        var (q, kx, vx) = attention.Project(x, null, at);                               // [B, H, n, Dh]
        var (_, kh, vh) = attention.Project(h, null, at);
        // Interleaved per token, [h_0, S_0, h_1, S_1, …]: key m belongs to segment token m / 2.
        Tensor Pair(Tensor a, Tensor c) => stack([a, c], 3).flatten(2, 3);            // [B, H, 2n, Dh]
        Tensor k = Pair(kh, kx), v = Pair(vh, vx);
        if (segmentKeys is not null)
        {
            if (offset == 0) segmentKeys.KvLength = 0;                                 // a new segment
            (k, v) = KvBuffer.Append(segmentKeys, k, v);                               // [B, H, 2(offset + n), Dh]
        }
        var tokenOfKey = arange(k.shape[2], device: x.device).div(2, rounding_mode: RoundingMode.floor);
        var mask = tokenOfKey.unsqueeze(0).le(arange(offset, offset + n, device: x.device).unsqueeze(1));   // [n, 2(offset + n)]
        if (persistent_memory is not null)
        {
            var (pk, pv) = attention.PersistentKeys(persistent_memory.to(x.dtype), b);   // [B, H, Np, Dh]
            k = cat([pk, k], 2);
            v = cat([pv, v], 2);
            mask = cat([ones(n, pk.shape[2], ScalarType.Bool, x.device), mask], 1);
        }
        return attention.Output(nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask));
    }
}
