using static TorchSharp.torch;

namespace Mnemo.Models;

/// <summary>
/// Where landmark attention's landmark tokens go (docs/mechanisms.md#landmark-attention): one after every ℓ tokens of the
/// input, so the layers see blocks of ℓ + 1 positions, each ending with its landmark. The model inserts them after the
/// embeddings and drops their positions before the head: callers see their own tokens only. Positions inside the
/// layers (rotary angles, a stream's offsets) count the landmarks.
/// </summary>
public static class Landmarks
{
    /// <summary>Position inside the layers of the input's token <paramref name="regular"/> (or, for a stream, where the
    /// layers continue after <paramref name="regular"/> tokens): every ℓ tokens before it brought one landmark.</summary>
    public static long Extended(long regular, int block) => regular + regular / block;

    /// <summary>
    /// h [B, T, D] of tokens at input positions offset … offset + T − 1 → [B, T', D] with the landmark embedding
    /// [1, D] after every token whose position + 1 is a multiple of ℓ; and the indices [T] of h's rows in the result.
    /// </summary>
    public static (Tensor Extended, Tensor Tokens) Insert(Tensor h, Tensor landmark, long offset, int block)
    {
        using var scope = NewDisposeScope();
        long t = h.shape[1];
        var source = new List<long>();                                                  // row of [h; landmark] per position
        var tokens = new long[t];
        for (long i = 0; i < t; i++)
        {
            tokens[i] = source.Count;
            source.Add(i);
            if ((offset + i + 1) % block == 0) source.Add(t);                            // row t is the landmark
        }
        var rows = cat([h, landmark.to(h.dtype).unsqueeze(0).expand(h.shape[0], 1, -1)], 1); // [B, T + 1, D]
        var extended = rows.index_select(1, tensor(source.ToArray(), device: h.device));
        return (extended.MoveToOuterDisposeScope(), tensor(tokens, device: h.device).MoveToOuterDisposeScope());
    }
}
