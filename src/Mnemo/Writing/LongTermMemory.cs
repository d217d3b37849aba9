namespace Mnemo.Writing;

/// <summary>One stored passage and its embedding.</summary>
public sealed record MemoryEntry(int Step, string Text, float[] Embedding);

/// <summary>A passage found by <see cref="LongTermMemory.Retrieve"/>, with its index in the store and its similarity.</summary>
public sealed record Retrieved(int Index, MemoryEntry Entry, double Similarity);

/// <summary>
/// RecurrentGPT's long-term memory: every past passage with its embedding, searched by cosine similarity
/// (docs/writing.md#the-loop). Nothing is ever dropped, so a run's store grows by one passage per step.
/// </summary>
public sealed class LongTermMemory
{
    readonly List<MemoryEntry> _entries = [];

    public IReadOnlyList<MemoryEntry> Entries => _entries;

    public void Add(MemoryEntry entry)
    {
        if (_entries.Count > 0 && _entries[0].Embedding.Length != entry.Embedding.Length)
            throw new ArgumentException(
                $"embedding of width {entry.Embedding.Length} does not match the store's {_entries[0].Embedding.Length}", nameof(entry));
        _entries.Add(entry);
    }

    /// <summary>The <paramref name="k"/> most similar passages to <paramref name="query"/>, most similar first; ties go to
    /// the older passage, so the order is the same on every run.</summary>
    public IReadOnlyList<Retrieved> Retrieve(float[] query, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        return [.. _entries.Select((e, i) => new Retrieved(i, e, Vectors.Cosine(query, e.Embedding)))
            .OrderByDescending(r => r.Similarity).ThenBy(r => r.Index).Take(k)];
    }
}
