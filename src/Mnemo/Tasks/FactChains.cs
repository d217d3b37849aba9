using Mnemo.Runtime;

namespace Mnemo.Tasks;

/// <summary>
/// A token-level BABILong analogue (docs/tasks.md#fact-chains). Per example of length L:
/// <list type="number">
/// <item>F ∈ [min_facts, max_facts] facts are simulated in order on a small world. qa1: every fact is
/// "E moved_to Loc". qa2: facts are moves, "E grabbed O" (E has a location; O is free and lies where E is, or was
/// never placed) and "E dropped O" (O now lies at E's location); moves have weight 2, grabs and drops 1 each.
/// A move always goes to a location other than the current one.</item>
/// <item>Each fact is a sentence "subject relation argument ." and the question is "where_is X": X an entity that
/// has moved (qa1), or an object whose location is known (qa2: held by an entity, or dropped).</item>
/// <item>The L − 4F − 2 filler tokens form sentences of filler_sentence_len filler words and a period; a leftover
/// shorter sentence comes first. Facts go, in order, into uniformly random slots between filler sentences
/// (BABILong inserts bAbI facts into PG19 text the same way). Filler words never occur in facts.</item>
/// <item>The only label, at the last position (X), is the answer: X's latest location (qa1), or the current
/// location of O's holder, or where O was dropped (qa2: two supporting facts).</item>
/// </list>
/// Each example has its own stream seeded by (seed, slice, index).
/// </summary>
public static class FactChains
{
    public const int Period = 0, MovedTo = 1, Grabbed = 2, Dropped = 3, WhereIs = 4, FirstEntity = 5;

    /// <summary>Tokens per fact ("subject relation argument .") and in the question ("where_is X").</summary>
    public const int FactLen = 4, QuestionLen = 2;

    public static TaskBatch Generate(FactChainsConfig task, FactChainsSlice slice, int seed, int sliceIndex)
    {
        return Examples.Generate(slice.NumExamples, slice.SeqLen, 1, seed, sliceIndex,
            (_, rng, input, label) => WriteExample(task, rng, input, label));
    }

    public static TaskBatch[] GenerateAll(FactChainsConfig task, FactChainsSlice[] slices, int seed) =>
        slices.Select((s, i) => Generate(task, s, seed, i)).ToArray();

    /// <summary>A fact sentence without its period: subject, relation, argument (all tokens).</summary>
    public readonly record struct Fact(int Subject, int Relation, int Argument);

    static void WriteExample(FactChainsConfig task, Random rng, Span<long> input, Span<long> label)
    {
        int count = rng.Next(task.MinFacts, task.MaxFacts + 1);
        var (facts, asked, answer) = task.Qa == FactQuestion.Qa1 ? Qa1(task, rng, count) : Qa2(task, rng, count);

        // Filler sentences: a leftover short one first, then full ones of filler_sentence_len words and a period.
        int unit = task.FillerSentenceLen + 1;
        int filler = input.Length - FactLen * count - QuestionLen;
        var sentences = new List<int>();
        if (filler % unit > 0) sentences.Add(filler % unit);
        for (int s = 0; s < filler / unit; s++) sentences.Add(unit);

        // Each fact takes a uniform slot among the sentences.Count + 1 gaps; sorting keeps the facts in order.
        var slots = Enumerable.Range(0, count).Select(_ => rng.Next(sentences.Count + 1)).Order().ToArray();
        int p = 0, next = 0;
        for (int s = 0; s <= sentences.Count; s++)
        {
            for (; next < count && slots[next] == s; next++)
            {
                var f = facts[next];
                input[p++] = f.Subject;
                input[p++] = f.Relation;
                input[p++] = f.Argument;
                input[p++] = Period;
            }
            if (s == sentences.Count) break;
            for (int w = 0; w < sentences[s] - 1; w++) input[p++] = rng.Next(task.FirstFiller, task.VocabSize);
            input[p++] = Period;
        }
        input[p++] = WhereIs;
        input[p] = asked;
        label.Fill(TaskBatch.Ignore);
        label[p] = answer;
    }

    /// <summary>qa1: random moves; ask about an entity that moved; the answer is its last destination.</summary>
    static (Fact[], int Asked, int Answer) Qa1(FactChainsConfig task, Random rng, int count)
    {
        var at = new Dictionary<int, int>();
        var facts = new Fact[count];
        for (int i = 0; i < count; i++) facts[i] = Move(task, rng, at, task.FirstEntity + rng.Next(task.NumEntities));
        var moved = at.Keys.Order().ToArray();
        int asked = moved[rng.Next(moved.Length)];
        return (facts, asked, at[asked]);
    }

    /// <summary>One entity moves to a location other than its current one.</summary>
    static Fact Move(FactChainsConfig task, Random rng, Dictionary<int, int> at, int entity)
    {
        int location;
        do location = task.FirstLocation + rng.Next(task.NumLocations);
        while (at.TryGetValue(entity, out int current) && current == location);
        at[entity] = location;
        return new Fact(entity, MovedTo, location);
    }

    /// <summary>
    /// qa2: moves, grabs and drops on a world of entity locations, object holders and dropped-object locations;
    /// ask about an object whose location is known. Redrawn (same stream) in the rare case none is.
    /// </summary>
    static (Fact[], int Asked, int Answer) Qa2(FactChainsConfig task, Random rng, int count)
    {
        while (true)
        {
            var at = new Dictionary<int, int>();        // entity → location
            var holder = new Dictionary<int, int>();    // object → entity holding it
            var lies = new Dictionary<int, int>();      // object → location it was dropped at
            var objects = Enumerable.Range(task.FirstObject, task.NumObjects).ToArray();
            var facts = new Fact[count];
            for (int i = 0; i < count; i++)
            {
                var grabs = (from e in at.Keys.Order()
                             from o in objects
                             where !holder.ContainsKey(o) && (!lies.TryGetValue(o, out int l) || l == at[e])
                             select (e, o)).ToArray();
                var held = holder.Keys.Order().ToArray();
                int choice = rng.Next(2 + (grabs.Length > 0 ? 1 : 0) + (held.Length > 0 ? 1 : 0));
                if (choice >= 2 && grabs.Length > 0 && (choice == 2 || held.Length == 0))
                {
                    var (e, o) = grabs[rng.Next(grabs.Length)];
                    holder[o] = e;
                    lies.Remove(o);
                    facts[i] = new Fact(e, Grabbed, o);
                }
                else if (choice >= 2)
                {
                    int o = held[rng.Next(held.Length)], e = holder[o];
                    holder.Remove(o);
                    lies[o] = at[e];
                    facts[i] = new Fact(e, Dropped, o);
                }
                else facts[i] = Move(task, rng, at, task.FirstEntity + rng.Next(task.NumEntities));
            }
            var known = objects.Where(o => holder.ContainsKey(o) || lies.ContainsKey(o)).ToArray();
            if (known.Length == 0) continue;
            int asked = known[rng.Next(known.Length)];
            return (facts, asked, holder.TryGetValue(asked, out int h) ? at[h] : lies[asked]);
        }
    }
}
