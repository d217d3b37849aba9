using static TorchSharp.torch;

namespace Mnemo.Memory.Episodic;

/// <summary>
/// EM-LLM's retrieval (Fountas et al. 2024, §3.4; docs/mechanisms.md#em-llm-episodic-memory): what an execution block of
/// queries reads from the context before it. Every query reads the first n_init tokens and every token from n_local
/// before the block on (the local window and, causally, the block itself). The tokens in between are the memory, cut
/// into events; the block reads the events that match it best, up to n_mem tokens, and some of their neighbours.
/// </summary>
public static class EventRetrieval
{
    /// <summary>
    /// Which keys the T queries q [B, H, T, Dh] of a block after <paramref name="past"/> tokens read among k
    /// [B, H, past + T, Dh]: bool [B, 1, T, past + T] (one set for the whole block; causality is applied by the caller).
    /// </summary>
    /// <param name="starts">row b's event boundaries: the first position of each event after the first (increasing)</param>
    public static Tensor Mask(Tensor q, Tensor k, long past, IReadOnlyList<IReadOnlyList<int>> starts, EpisodicConfig c)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], t = q.shape[2], n = past + t;
        var (from, to) = MemorySpan(past, c);
        var allowed = new bool[b * n];
        Array.Fill(allowed, true);
        if (to > from)
        {
            // An event's score is that of its best token: Σ_h q̄_h · k_j,h, q̄ the mean of the block's queries per head.
            var tokenScores = (k.narrow(2, from, to - from) * q.mean([2], keepdim: true)).sum(-1).sum(1);   // [B, to − from]
            var scores = tokenScores.to(ScalarType.Float64).cpu().data<double>().ToArray();
            for (int row = 0; row < b; row++)
            {
                var events = Events(starts[row], (int)from, (int)to);
                long rowStart = row * (to - from) - from;                                 // scores of row, indexed by position
                var best = events.Select(e => Enumerable.Range(e.From, e.To - e.From).Max(j => scores[rowStart + j])).ToArray();
                var read = Choose(events, best, c);
                for (long j = from; j < to; j++) allowed[row * n + j] = false;
                foreach (int e in read)
                    for (int j = events[e].From; j < events[e].To; j++) allowed[row * n + j] = true;
            }
        }
        return tensor(allowed, device: q.device).view(b, 1, 1, n).expand(b, 1, t, n).MoveToOuterDisposeScope();
    }

    /// <summary>The memory of a block after <paramref name="past"/> tokens: positions [n_init, past − n_local) (empty when
    /// the context fits the init tokens and the window).</summary>
    public static (long From, long To) MemorySpan(long past, EpisodicConfig c)
    {
        long from = Math.Min(c.InitTokens, past);
        return (from, Math.Max(from, past - c.LocalTokens));
    }

    /// <summary>The events' parts inside [from, to), in order: [start_i, start_{i+1}) clipped, empty parts dropped.</summary>
    public static List<(int From, int To)> Events(IReadOnlyList<int> starts, int from, int to)
    {
        var events = new List<(int, int)>();
        var edges = new[] { 0 }.Concat(starts).Append(int.MaxValue).ToArray();
        for (int i = 0; i + 1 < edges.Length; i++)
        {
            int a = Math.Max(edges[i], from), z = Math.Min(edges[i + 1], to);
            if (a < z) events.Add((a, z));
        }
        return events;
    }

    /// <summary>
    /// The events a block reads: by score, greedily, while they fit n_mem less the contiguity buffer (the one that
    /// overflows it is kept when that lands closer to the budget, as EM-LLM's code does), then the neighbours i ± 1 of
    /// those, best first, while they fit the contiguity buffer.
    /// </summary>
    public static SortedSet<int> Choose(IReadOnlyList<(int From, int To)> events, IReadOnlyList<double> scores, EpisodicConfig c)
    {
        var chosen = new SortedSet<int>();
        int budget = c.SimilarityTokens, taken = 0;
        var byScore = Enumerable.Range(0, events.Count).OrderByDescending(i => scores[i]).ThenBy(i => i).ToList();
        foreach (int i in byScore)
        {
            int size = events[i].To - events[i].From;
            if (taken + size > budget)
            {
                if (Math.Abs(taken + size - budget) < Math.Abs(taken - budget)) chosen.Add(i);
                break;
            }
            chosen.Add(i);
            taken += size;
        }
        int buffer = c.ContiguityTokens, used = 0;
        foreach (int i in byScore.Where(chosen.Contains).ToList())
            foreach (int neighbour in new[] { i - 1, i + 1 })
            {
                if (neighbour < 0 || neighbour >= events.Count || chosen.Contains(neighbour)) continue;
                int size = events[neighbour].To - events[neighbour].From;
                if (used + size > buffer) continue;
                chosen.Add(neighbour);
                used += size;
            }
        return chosen;
    }
}
