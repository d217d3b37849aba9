using System.Text;

namespace Mnemo.Writing;

/// <summary>
/// A lexical embedder: counts of the text's lower-cased character n-grams (UTF-8 bytes) hashed (FNV-1a, the same on
/// every run) into a fixed number of buckets, L2-normalised. Texts that share words are close; no model is needed. The
/// baseline against which a learned embedder is measured (docs/writing.md).
/// </summary>
public sealed class NgramEmbedder : ITextEmbedder
{
    readonly int _n, _buckets;

    public NgramEmbedder(int n = 3, int buckets = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(buckets, 1);
        (_n, _buckets) = (n, buckets);
    }

    public string Name => $"{_n}-grams";

    public float[] Embed(string text)
    {
        var v = new float[_buckets];
        var bytes = Encoding.UTF8.GetBytes(text.ToLowerInvariant());
        for (int i = 0; i + _n <= bytes.Length; i++)
            v[Fnv1a(bytes.AsSpan(i, _n)) % (uint)_buckets] += 1;
        return Vectors.Normalized(v);
    }

    static uint Fnv1a(ReadOnlySpan<byte> bytes)
    {
        uint hash = 2166136261;
        foreach (byte b in bytes) hash = (hash ^ b) * 16777619;
        return hash;
    }
}

/// <summary>Small helpers on embedding vectors.</summary>
public static class Vectors
{
    /// <summary>v / ‖v‖ (a zero vector stays zero).</summary>
    public static float[] Normalized(float[] v)
    {
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        return norm == 0 ? v : Array.ConvertAll(v, x => (float)(x / norm));
    }

    /// <summary>Cosine similarity of two vectors of the same length (0 when either is zero).</summary>
    public static double Cosine(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"vectors of lengths {a.Length} and {b.Length} cannot be compared");
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }
}
