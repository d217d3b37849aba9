using System.Text.Json;
using System.Text.Json.Serialization;
using Mnemo.IO;

namespace Mnemo.Writing;

/// <summary>Settings of the loop (docs/writing.md#the-loop).</summary>
public sealed record WriterOptions
{
    /// <summary>Past passages placed in each prompt (RecurrentGPT retrieves 2).</summary>
    public int Retrieved { get; init; } = 2;

    /// <summary>The short-term memory's bound in words; a longer rewrite is cut to its first this many words.</summary>
    public int MemoryWords { get; init; } = 500;

    /// <summary>Tries per step before the fallback (the whole output becomes the paragraph; memory and instruction stay).</summary>
    public int Attempts { get; init; } = 3;

    public void Validate()
    {
        if (Retrieved < 0) throw new MnemoException($"retrieved passages must be ≥ 0, got {Retrieved}");
        if (MemoryWords < 1) throw new MnemoException($"memory words must be ≥ 1, got {MemoryWords}");
        if (Attempts < 1) throw new MnemoException($"attempts must be ≥ 1, got {Attempts}");
    }
}

/// <summary>Everything the loop carries from one step to the next; saved after every step so a run can resume.</summary>
public sealed record WriterState
{
    /// <summary>Steps done.</summary>
    public int Step { get; init; }

    /// <summary>The latest paragraph (the first is the user's opening).</summary>
    public required string Paragraph { get; init; }

    /// <summary>The short-term memory: a running summary the generator rewrites each step.</summary>
    public required string Memory { get; init; }

    /// <summary>What the next paragraph should do; also the long-term memory's query.</summary>
    public required string Instruction { get; init; }

    /// <summary>The long-term memory: every earlier paragraph with its embedding.</summary>
    public List<MemoryEntry> LongTerm { get; init; } = [];

    /// <summary>Steps whose output could not be read after every attempt.</summary>
    public int Fallbacks { get; init; }

    /// <summary>The embedder of the long-term memory's vectors (null before the first step): a run keeps one.</summary>
    public string? Embedder { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public void Save(string path) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    public static WriterState Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<WriterState>(File.ReadAllText(path), Json)
                ?? throw new MnemoException($"{path}: the file holds no writer state");
        }
        catch (JsonException e)
        {
            throw new MnemoException($"{path}: not a writer state ({e.Message})");
        }
    }
}

/// <summary>What one step did: its prompt and output, whether the output could be read, and what was retrieved.</summary>
public sealed record StepRecord(int Step, string Prompt, string Output, bool Parsed, int Attempts, IReadOnlyList<Retrieved> Retrieved,
    bool MemoryCut);

/// <summary>
/// RecurrentGPT's loop (Zhou et al. 2023, arXiv 2305.13304; docs/writing.md#the-loop): each step retrieves the past
/// paragraphs most similar to the instruction, prompts the generator with the short-term memory, the previous
/// paragraph, the instruction and those paragraphs, and reads back the next paragraph, the rewritten memory and the next
/// instruction. The previous paragraph then joins the long-term memory.
/// </summary>
public sealed class RecurrentWriter
{
    readonly IPassageGenerator _generator;
    readonly ITextEmbedder _embedder;
    readonly WriterOptions _options;

    public RecurrentWriter(IPassageGenerator generator, ITextEmbedder embedder, WriterOptions? options = null)
    {
        _generator = generator;
        _embedder = embedder;
        _options = options ?? new WriterOptions();
        _options.Validate();
    }

    /// <summary>The state before the first step: the user's opening paragraph (also the first memory) and an instruction.</summary>
    public static WriterState Start(string opening, string instruction)
    {
        if (string.IsNullOrWhiteSpace(opening)) throw new MnemoException("the opening paragraph is empty");
        if (string.IsNullOrWhiteSpace(instruction)) throw new MnemoException("the first instruction is empty");
        return new WriterState { Paragraph = opening.Trim(), Memory = opening.Trim(), Instruction = instruction.Trim() };
    }

    /// <summary>One step from <paramref name="state"/>; returns the next state and what happened.</summary>
    public (WriterState Next, StepRecord Record) Step(WriterState state)
    {
        if (state.Embedder is { } used && used != _embedder.Name)
            throw new MnemoException($"the run's long-term memory was embedded by {used}; continue it with the same embedder, " +
                $"not {_embedder.Name}");
        var memory = new LongTermMemory();
        foreach (var entry in state.LongTerm) memory.Add(entry);
        var found = memory.Retrieve(_embedder.Embed(state.Instruction), _options.Retrieved);
        var prompt = RecurrentPrompt.Build(state.Memory, state.Paragraph, state.Instruction, found.Select(r => r.Entry.Text),
            _options.MemoryWords);
        string output = "";
        StepOutput? parsed = null;
        int attempts = 0;
        while (parsed is null && attempts < _options.Attempts)
            parsed = RecurrentPrompt.Parse(output = _generator.Generate(prompt, attempts++));
        bool cut = false;
        var next = state with
        {
            Step = state.Step + 1,
            Embedder = _embedder.Name,
            LongTerm = [.. state.LongTerm, new MemoryEntry(state.Step, state.Paragraph, _embedder.Embed(state.Paragraph))],
        };
        if (parsed is null)
            next = next with { Paragraph = output.Trim(), Fallbacks = state.Fallbacks + 1 };
        else
        {
            (string summary, cut) = RecurrentPrompt.FirstWords(parsed.Memory, _options.MemoryWords);
            next = next with { Paragraph = parsed.Paragraph, Memory = summary, Instruction = parsed.Instruction };
        }
        return (next, new StepRecord(state.Step, prompt, output, parsed is not null, attempts, found, cut));
    }
}
