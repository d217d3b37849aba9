using Mnemo.Tasks;
using Mnemo.Training;
using static Mnemo.Tests.Tasks.TaskRows;

namespace Mnemo.Tests.Tasks;

public class FactChainsTests
{
    static FactChainsConfig Task(FactQuestion qa) => new() { Qa = qa };

    static TaskBatch Make(FactChainsConfig task, int seqLen, int count = 500, int seed = 5) =>
        FactChains.Generate(task, new FactChainsSlice { SeqLen = seqLen, NumExamples = count }, seed, 0);

    /// <summary>The example read back: its sentences (split at periods), the question's subject.</summary>
    static (List<long[]> Sentences, long Asked) Parse(long[] x)
    {
        Assert.Equal(FactChains.WhereIs, x[^2]);
        var sentences = new List<long[]>();
        var current = new List<long>();
        foreach (long t in x[..^2])
        {
            if (t == FactChains.Period) { sentences.Add([.. current]); current.Clear(); }
            else current.Add(t);
        }
        Assert.Empty(current);   // the text before the question ends with a period
        return (sentences, x[^1]);
    }

    static bool IsFact(FactChainsConfig task, long[] s) => s.Length == 3 && s.All(t => t < task.FirstFiller);

    /// <summary>
    /// Replays the facts on a world and answers the question, checking that every fact is possible: a grab needs a
    /// located entity and a free object lying where it is (or never placed); a drop needs the holder.
    /// </summary>
    static long Answer(FactChainsConfig task, IEnumerable<long[]> facts, long asked)
    {
        var at = new Dictionary<long, long>();
        var holder = new Dictionary<long, long>();
        var lies = new Dictionary<long, long>();
        foreach (var f in facts)
        {
            long subject = f[0], relation = f[1], argument = f[2];
            Assert.InRange(subject, task.FirstEntity, task.FirstLocation - 1);
            if (relation == FactChains.MovedTo)
            {
                Assert.InRange(argument, task.FirstLocation, task.FirstObject - 1);
                Assert.NotEqual(at.GetValueOrDefault(subject, -1), argument);
                at[subject] = argument;
                continue;
            }
            Assert.Equal(FactQuestion.Qa2, task.Qa);
            Assert.InRange(argument, task.FirstObject, task.FirstFiller - 1);
            if (relation == FactChains.Grabbed)
            {
                Assert.True(at.ContainsKey(subject));
                Assert.False(holder.ContainsKey(argument));
                if (lies.TryGetValue(argument, out long where)) Assert.Equal(at[subject], where);
                holder[argument] = subject;
                lies.Remove(argument);
            }
            else
            {
                Assert.Equal(FactChains.Dropped, relation);
                Assert.Equal(subject, holder[argument]);
                holder.Remove(argument);
                lies[argument] = at[subject];
            }
        }
        if (task.Qa == FactQuestion.Qa1) return at[asked];
        return holder.TryGetValue(asked, out long h) ? at[h] : lies[asked];
    }

    [Theory]
    [InlineData(FactQuestion.Qa1, 42)]     // 10 facts and the question, no room for filler
    [InlineData(FactQuestion.Qa1, 128)]
    [InlineData(FactQuestion.Qa1, 1000)]
    [InlineData(FactQuestion.Qa2, 45)]
    [InlineData(FactQuestion.Qa2, 256)]
    public void The_answer_is_recomputed_by_replaying_the_facts(FactQuestion qa, int seqLen)
    {
        var task = Task(qa);
        var batch = Make(task, seqLen);
        Assert.Equal(seqLen, batch.SeqLen);
        foreach (var (x, y) in Rows(batch))
        {
            Assert.All(x, t => Assert.InRange(t, 0, task.VocabSize - 1));
            var (sentences, asked) = Parse(x);
            var facts = sentences.Where(s => IsFact(task, s)).ToList();
            Assert.InRange(facts.Count, task.MinFacts, task.MaxFacts);
            // Filler sentences are filler words only, full length except possibly the first.
            var filler = sentences.Where(s => !IsFact(task, s)).ToList();
            Assert.All(filler.SelectMany(s => s), t => Assert.InRange(t, task.FirstFiller, task.VocabSize - 1));
            Assert.All(filler.Skip(1), s => Assert.Equal(task.FillerSentenceLen, s.Length));
            Assert.Equal(seqLen, sentences.Sum(s => s.Length + 1) + 2);

            Assert.InRange(asked, qa == FactQuestion.Qa1 ? task.FirstEntity : task.FirstObject,
                (qa == FactQuestion.Qa1 ? task.FirstLocation : task.FirstFiller) - 1);
            Assert.Equal([seqLen - 1], Scored(y));
            Assert.Equal(Answer(task, facts, asked), y[^1]);
        }
    }

    [Fact]
    public void Facts_spread_over_the_whole_context_and_counts_cover_the_range()
    {
        var task = Task(FactQuestion.Qa1);
        const int seqLen = 512;
        var rows = Rows(Make(task, seqLen, 1000)).ToList();
        // Where the first fact starts: uniform slots put it anywhere from the start to the end of the filler.
        var firstAt = rows.Select(r => Enumerable.Range(0, seqLen - 3).First(i => r.X[i + 1] == FactChains.MovedTo)).ToArray();
        Assert.True(firstAt.Min() < seqLen / 10 && firstAt.Max() > seqLen / 2);
        var counts = rows.Select(r => r.X.Count(t => t == FactChains.MovedTo)).Distinct().Order();
        Assert.Equal(Enumerable.Range(task.MinFacts, task.MaxFacts - task.MinFacts + 1), counts);
    }

    [Fact]
    public void Qa2_asks_about_held_and_dropped_objects_and_uses_every_relation()
    {
        var task = Task(FactQuestion.Qa2);
        var rows = Rows(Make(task, 128, 1000)).ToList();
        int heldAtEnd = 0, dropped = 0;
        foreach (var (x, _) in rows)
        {
            var facts = Parse(x).Sentences.Where(s => IsFact(task, s)).ToList();
            var last = facts.LastOrDefault(f => f[2] == x[^1] && f[1] != FactChains.MovedTo);
            if (last![1] == FactChains.Grabbed) heldAtEnd++; else dropped++;
        }
        Assert.True(heldAtEnd > 100 && dropped > 100, $"held {heldAtEnd}, dropped {dropped}");
        var relations = rows.SelectMany(r => r.X).Where(t => t is FactChains.MovedTo or FactChains.Grabbed or FactChains.Dropped).Distinct()
            .Count();
        Assert.Equal(3, relations);
    }

    [Fact]
    public void Same_seed_same_examples_different_seed_or_slice_different_examples() =>
        Deterministic((seed, slice) => FactChains.Generate(Task(FactQuestion.Qa2), new FactChainsSlice { NumExamples = 30 }, seed, slice));

    [Fact]
    public void The_run_config_trains_on_fact_chains()
    {
        var c = RunConfig.Parse("""{ "task": { "kind": "fact_chains", "qa": "qa2", "vocab_size": 40 } }""", "run.json");
        var task = Assert.IsType<FactChainsConfig>(c.Task);
        Assert.Equal(FactQuestion.Qa2, task.Qa);
        Assert.Equal(40, c.ResolvedModel.VocabSize);
        Assert.Equal(c.ToJson(), RunConfig.Parse(c.ToJson(), "round trip").ToJson());
    }

    [Theory]
    [InlineData(
        """{ "task": { "kind": "fact_chains", "train": [ { "seq_len": 41 } ] } }""",
        "task.train[0].seq_len")]   // 10 facts + question = 42
    // 5 + 4 + 6 + 4 = 19: one filler
    [InlineData("""{ "task": { "kind": "fact_chains", "vocab_size": 20 } }""", "task.vocab_size")]
    [InlineData("""{ "task": { "kind": "fact_chains", "min_facts": 5, "max_facts": 4 } }""", "task.max_facts")]
    [InlineData("""{ "task": { "kind": "fact_chains", "qa": "qa2", "min_facts": 1 } }""", "task.min_facts")]
    [InlineData("""{ "task": { "kind": "fact_chains", "qa": "qa7" } }""", "task.qa")]
    [InlineData("""{ "task": { "kind": "fact_chains", "num_locations": 1 } }""", "task.num_locations")]
    [InlineData("""{ "task": { "kind": "fact_chains", "train_seed": 2 } }""", "task.test_seed")]
    public void Invalid_settings_are_rejected_naming_the_field(string json, string field) => RejectedNaming(json, field);
}
