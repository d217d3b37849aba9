using System.Numerics;

namespace Mnemo.Retrieval;

/// <summary>
/// A wavelet matrix (Claude, Navarro and Ordóñez 2015) over a sequence of symbols in [0, σ): one bit vector per bit of
/// the symbols, most significant first, each level's sequence stably split into its 0-bit and 1-bit halves. It answers
/// rank(c, i) (how many c in the first i symbols) and lists the distinct symbols of a range with their counts, each in
/// O(log σ) per symbol, which is what the FM-index needs of its BWT (docs/retrieval.md#the-fm-index).
/// </summary>
public sealed class WaveletMatrix
{
    readonly RankBits[] _levels;     // level l holds bit (bits − 1 − l) of each symbol, in that level's order
    readonly int[] _zeros;           // zeros at each level: where its 1-half starts in the next level's order

    public int Length { get; }
    public int Bits { get; }

    public WaveletMatrix(ReadOnlySpan<int> symbols, int alphabet)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(alphabet, 1);
        Length = symbols.Length;
        Bits = Math.Max(1, 32 - BitOperations.LeadingZeroCount((uint)(alphabet - 1)));
        _levels = new RankBits[Bits];
        _zeros = new int[Bits];
        var current = symbols.ToArray();
        foreach (int s in current)
            if ((uint)s >= (uint)alphabet) throw new ArgumentException($"symbol {s} is outside [0, {alphabet})", nameof(symbols));
        var reordered = new int[Length];
        for (int level = 0; level < Bits; level++)
        {
            int bit = Bits - 1 - level;
            var bits = new ulong[(Length + 63) / 64];
            int zeros = 0;
            for (int i = 0; i < Length; i++)
                if ((current[i] >> bit & 1) != 0) bits[i >> 6] |= 1UL << (i & 63);
                else zeros++;
            _levels[level] = new RankBits(bits);
            _zeros[level] = zeros;
            int z = 0, o = zeros;                                          // stable partition: 0-bits first
            foreach (int s in current) reordered[(s >> bit & 1) == 0 ? z++ : o++] = s;
            (current, reordered) = (reordered, current);
        }
    }

    /// <summary>How many times <paramref name="symbol"/> occurs among the first <paramref name="end"/> symbols.</summary>
    public int Rank(int symbol, int end)
    {
        int start = 0;
        for (int level = 0; level < Bits; level++)
        {
            var b = _levels[level];
            if ((symbol >> (Bits - 1 - level) & 1) == 0) { start = b.Rank0(start); end = b.Rank0(end); }
            else { start = _zeros[level] + b.Rank1(start); end = _zeros[level] + b.Rank1(end); }
        }
        return end - start;
    }

    /// <summary>The distinct symbols of positions [start, end), in increasing order, each with its count.</summary>
    public List<(int Symbol, int Count)> Distinct(int start, int end)
    {
        var found = new List<(int, int)>();
        if (start < end) Collect(0, 0, start, end, found);
        return found;
    }

    void Collect(int level, int prefix, int start, int end, List<(int, int)> found)
    {
        if (level == Bits) { found.Add((prefix, end - start)); return; }
        var b = _levels[level];
        int s0 = b.Rank0(start), e0 = b.Rank0(end);
        if (s0 < e0) Collect(level + 1, prefix << 1, s0, e0, found);
        int s1 = _zeros[level] + (start - s0), e1 = _zeros[level] + (end - e0);
        if (s1 < e1) Collect(level + 1, prefix << 1 | 1, s1, e1, found);
    }

    /// <summary>A bit vector with rank in O(1): a popcount of the word plus the ones before it, kept per word.</summary>
    sealed class RankBits
    {
        readonly ulong[] _words;
        readonly int[] _before;      // ones in words [0, w)

        public RankBits(ulong[] words)
        {
            _words = words;
            _before = new int[words.Length + 1];
            for (int w = 0; w < words.Length; w++) _before[w + 1] = _before[w] + BitOperations.PopCount(words[w]);
        }

        /// <summary>Ones among the first <paramref name="end"/> bits.</summary>
        public int Rank1(int end)
        {
            int w = end >> 6, r = end & 63;
            return _before[w] + (r == 0 ? 0 : BitOperations.PopCount(_words[w] & ((1UL << r) - 1)));
        }

        public int Rank0(int end) => end - Rank1(end);
    }
}
