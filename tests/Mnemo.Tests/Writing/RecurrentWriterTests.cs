using Mnemo.Experiments;
using Mnemo.Layers;
using Mnemo.Tests.Models;
using Mnemo.Text;
using Mnemo.Writing;

namespace Mnemo.Tests.Writing;

/// <summary>RecurrentGPT's loop with scripted generators: what each prompt holds, what the memories keep, retries and the
/// fallback, the memory bound, resuming from a saved state, and the retrieval measurement.</summary>
[Collection(TorchCollection.Name)]
public class RecurrentWriterTests
{
    /// <summary>Answers from a script: call i gets answers[i] (the last one repeats); every prompt is kept.</summary>
    sealed class Scripted(params string[] answers) : IPassageGenerator
    {
        public List<string> Prompts { get; } = [];
        public List<int> Attempts { get; } = [];

        public string Name => "scripted";

        public string Generate(string prompt, int attempt)
        {
            Prompts.Add(prompt);
            Attempts.Add(attempt);
            return answers[Math.Min(Prompts.Count - 1, answers.Length - 1)];
        }
    }

    static string Answer(string paragraph, string memory, string instruction) =>
        $"Sure.\n{RecurrentPrompt.ParagraphMarker}\n{paragraph}\n{RecurrentPrompt.MemoryMarker}\n{memory}\n" +
        $"{RecurrentPrompt.InstructionMarker}\n{instruction}\n";

    [Fact]
    public void Each_step_prompts_with_the_memory_the_previous_paragraph_the_instruction_and_the_closest_past_paragraphs()
    {
        var generator = new Scripted(
            Answer("The lighthouse keeper polished the great lamp.", "A keeper tends a lamp.", "Bring in a storm."),
            Answer("A storm broke over the harbour at night.", "A keeper, a lamp, a storm.", "The keeper finds a bottle."),
            Answer("On the shore lay a green bottle with a letter.", "A bottle washes up.", "Return to the lighthouse lamp."),
            Answer("He climbed back to the lamp and read the letter.", "The letter is read.", "End."));
        var writer = new RecurrentWriter(generator, new NgramEmbedder(), new WriterOptions { Retrieved = 1 });
        var state = RecurrentWriter.Start("A village sat by the sea.", "Introduce the keeper.");
        var records = new List<StepRecord>();
        for (int i = 0; i < 4; i++)
        {
            (state, var record) = writer.Step(state);
            records.Add(record);
        }
        Assert.Equal(4, state.Step);
        Assert.Equal("He climbed back to the lamp and read the letter.", state.Paragraph);
        Assert.Equal("The letter is read.", state.Memory);
        Assert.Equal("End.", state.Instruction);
        // The long-term memory holds every paragraph before the latest, in order, the opening first.
        Assert.Equal(["A village sat by the sea.", "The lighthouse keeper polished the great lamp.",
            "A storm broke over the harbour at night.", "On the shore lay a green bottle with a letter."],
            state.LongTerm.Select(e => e.Text));
        Assert.Empty(records[0].Retrieved);                                             // nothing stored before the first step
        // Step 4's instruction ("Return to the lighthouse lamp") finds the paragraph about the lamp, not the latest ones.
        Assert.Equal("The lighthouse keeper polished the great lamp.", records[3].Retrieved.Single().Entry.Text);
        var prompt = generator.Prompts[3];
        foreach (var part in new[] { "A bottle washes up.", "On the shore lay a green bottle with a letter.",
            "Return to the lighthouse lamp.", "The lighthouse keeper polished the great lamp." })
            Assert.Contains(part, prompt);
        Assert.DoesNotContain("A storm broke", prompt);
        Assert.All(records, r => Assert.True(r.Parsed));
    }

    [Fact]
    public void An_unreadable_output_is_retried_then_the_whole_output_becomes_the_paragraph()
    {
        var good = Answer("Second paragraph.", "New memory.", "Next.");
        var retried = new Scripted("no sections here", good);
        var (state, record) = new RecurrentWriter(retried, new NgramEmbedder()).Step(RecurrentWriter.Start("Opening.", "Go."));
        Assert.True(record.Parsed);
        Assert.Equal(2, record.Attempts);
        Assert.Equal([0, 1], retried.Attempts);                                         // the retry is told it is one
        Assert.Equal("Second paragraph.", state.Paragraph);

        var never = new Scripted("just prose, twice over");
        var start = RecurrentWriter.Start("Opening.", "Go.");
        (state, record) = new RecurrentWriter(never, new NgramEmbedder(), new WriterOptions { Attempts = 2 }).Step(start);
        Assert.False(record.Parsed);
        Assert.Equal(2, never.Prompts.Count);
        Assert.Equal("just prose, twice over", state.Paragraph);
        Assert.Equal(start.Memory, state.Memory);                                       // memory and instruction are kept
        Assert.Equal(start.Instruction, state.Instruction);
        Assert.Equal(1, state.Fallbacks);
        Assert.Single(state.LongTerm);
    }

    [Theory]
    [InlineData("Output Paragraph:\nP\nOutput Memory:\nM\nOutput Instruction:\nI", true)]
    [InlineData("Output Paragraph: P\nOutput Memory: M\nOutput Instruction: I", true)]
    [InlineData("Output Paragraph:\nP\nOutput Instruction:\nI\nOutput Memory:\nM", false)]        // out of order
    [InlineData("Output Paragraph:\nP\nsee Output Memory: M\nOutput Instruction:\nI", false)]      // marker mid-line
    [InlineData("Output Paragraph:\n\nOutput Memory:\nM\nOutput Instruction:\nI", false)]         // empty section
    [InlineData("Output Paragraph:\nP\nOutput Memory:\nM", false)]                                 // missing section
    public void Sections_are_read_only_when_all_three_start_lines_in_order(string output, bool readable)
    {
        var parsed = RecurrentPrompt.Parse(output);
        Assert.Equal(readable, parsed is not null);
        if (parsed is not null) Assert.Equal(("P", "M", "I"), (parsed.Paragraph, parsed.Memory, parsed.Instruction));
    }

    [Fact]
    public void The_short_term_memory_is_cut_to_its_bound()
    {
        var longMemory = string.Join(' ', Enumerable.Range(0, 40).Select(i => $"w{i}"));
        var writer = new RecurrentWriter(new Scripted(Answer("P.", longMemory, "I.")), new NgramEmbedder(),
            new WriterOptions { MemoryWords = 10 });
        var (state, record) = writer.Step(RecurrentWriter.Start("Opening.", "Go."));
        Assert.True(record.MemoryCut);
        Assert.Equal(string.Join(' ', Enumerable.Range(0, 10).Select(i => $"w{i}")), state.Memory);
    }

    [Fact]
    public void A_saved_state_resumes_to_the_same_run()
    {
        string Numbered(int i) => Answer($"Paragraph {i} about topic {i % 3}.", $"Memory {i}.", $"Topic {(i + 1) % 3}.");
        var answers = Enumerable.Range(1, 4).Select(Numbered).ToArray();
        var straight = RecurrentWriter.Start("Opening.", "Topic 1.");
        var writer = new RecurrentWriter(new Scripted(answers), new NgramEmbedder());
        for (int i = 0; i < 4; i++) straight = writer.Step(straight).Next;

        string path = Path.Combine(Path.GetTempPath(), $"mnemo-writer-{Guid.NewGuid():N}.json");
        try
        {
            var resumed = RecurrentWriter.Start("Opening.", "Topic 1.");
            var first = new RecurrentWriter(new Scripted(answers[..2]), new NgramEmbedder());
            for (int i = 0; i < 2; i++) resumed = first.Step(resumed).Next;
            resumed.Save(path);
            resumed = WriterState.Load(path);
            var second = new RecurrentWriter(new Scripted(answers[2..]), new NgramEmbedder());
            for (int i = 0; i < 2; i++) resumed = second.Step(resumed).Next;
            Assert.Equal(straight.Step, resumed.Step);
            Assert.Equal(straight.Paragraph, resumed.Paragraph);
            Assert.Equal(straight.LongTerm.Select(e => e.Text), resumed.LongTerm.Select(e => e.Text));
            Assert.Equal(straight.LongTerm.Select(e => e.Embedding), resumed.LongTerm.Select(e => e.Embedding));
            var other = new RecurrentWriter(new Scripted(answers), new NgramEmbedder(n: 4));
            Assert.Contains("embedded by 3-grams", Assert.Throws<MnemoException>(() => other.Step(resumed)).Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_file_that_is_not_a_state_is_refused_with_its_name()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mnemo-writer-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{ not json");
        try
        {
            var e = Assert.Throws<MnemoException>(() => WriterState.Load(path));
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Retrieval_ranks_by_cosine_and_breaks_ties_by_age()
    {
        var memory = new LongTermMemory();
        memory.Add(new MemoryEntry(0, "a", [1, 0]));
        memory.Add(new MemoryEntry(1, "b", [0, 1]));
        memory.Add(new MemoryEntry(2, "c", [1, 0]));
        Assert.Equal([0, 2], memory.Retrieve([2, 0.1f], 2).Select(r => r.Entry.Step));
        Assert.Equal([1], memory.Retrieve([0, 1], 1).Select(r => r.Entry.Step));
        Assert.Throws<ArgumentException>(() => memory.Add(new MemoryEntry(3, "d", [1, 0, 0])));
    }

    [Fact]
    public void Passage_recall_finds_every_passage_when_the_query_repeats_it()
    {
        // An embedder that sees only the passage number written into each half: every query finds its own passage.
        var text = string.Concat(Enumerable.Range(0, 40).Select(i => $"n{i:00} {new string('x', 26)} n{i:00} {new string('y', 26)} "));
        var pairs = PassageRecall.Pairs(text, 12, 61);
        Assert.All(pairs, p => Assert.Equal(p.Stored.Split(' ')[0], p.Query.Split(' ')[0]));
        var scores = PassageRecall.Measure(pairs, new FirstWord(), [4, 12], k: 2);
        Assert.All(scores, s => Assert.Equal((1.0, 1.0, 12), (s.Top1, s.TopK, s.Queries)));
        var blind = PassageRecall.Measure(pairs, new Constant(), [4], k: 1).Single();
        Assert.Equal(0.25, blind.Top1);                                                 // ties go to the oldest: one hit per group of 4
        Assert.Throws<MnemoException>(() => PassageRecall.Pairs("too short", 3, 60));
    }

    sealed class FirstWord : ITextEmbedder
    {
        public string Name => "first word";

        public float[] Embed(string text)
        {
            var v = new float[64];
            v[int.Parse(text.Split(' ')[0][1..]) % 64] = 1;
            return v;
        }
    }

    sealed class Constant : ITextEmbedder
    {
        public string Name => "constant";

        public float[] Embed(string text) => [1, 0];
    }

    [Fact]
    public void A_mnemo_model_generates_the_same_text_for_the_same_seed_and_embeds_to_unit_vectors()
    {
        var model = TinyModels.Build(TinyModels.Config(MixerKind.GatedDeltaNet, c => c with { VocabSize = 256 }), fp64: false);
        var tokenizer = ByteTokenizer.Instance;
        string A() => new ModelGenerator(model, tokenizer, 12, 64, 1.0, 0, seed: 3).Generate("Once upon a time", 0);
        Assert.Equal(A(), A());
        var generator = new ModelGenerator(model, tokenizer, 12, 64, 1.0, 0, seed: 3);
        Assert.NotEqual(generator.Generate("Once upon a time", 0), generator.Generate("Once upon a time", 1));
        var v = new ModelEmbedder(model, tokenizer, 32).Embed("The quick brown fox jumps over the lazy dog.");
        Assert.Equal(16, v.Length);
        Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 5);
    }
}
