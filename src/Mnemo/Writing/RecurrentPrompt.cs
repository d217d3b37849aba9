using System.Text;

namespace Mnemo.Writing;

/// <summary>The three parts a step's output must hold, read by <see cref="RecurrentPrompt.Parse"/>.</summary>
public sealed record StepOutput(string Paragraph, string Memory, string Instruction);

/// <summary>
/// The prompt of one RecurrentGPT step and the reading of its answer (docs/writing.md#the-loop). The prompt gives the
/// task, the short-term memory, the previous paragraph, the instruction for this step and the retrieved past passages,
/// then asks for three sections, each on a line of its own: <see cref="ParagraphMarker"/>, <see cref="MemoryMarker"/>
/// and <see cref="InstructionMarker"/>.
/// </summary>
public static class RecurrentPrompt
{
    public const string ParagraphMarker = "Output Paragraph:";
    public const string MemoryMarker = "Output Memory:";
    public const string InstructionMarker = "Output Instruction:";

    public static string Build(string memory, string paragraph, string instruction, IEnumerable<string> retrieved, int memoryWords)
    {
        var b = new StringBuilder();
        b.AppendLine("You are writing a long story one paragraph at a time. Use what is below.");
        b.AppendLine();
        b.AppendLine("Short-term memory (a summary of the story so far):").AppendLine(memory).AppendLine();
        b.AppendLine("Previous paragraph:").AppendLine(paragraph).AppendLine();
        b.AppendLine("Instruction for the next paragraph:").AppendLine(instruction).AppendLine();
        b.AppendLine("Related earlier paragraphs:");
        foreach (var text in retrieved) b.AppendLine(text).AppendLine();
        b.AppendLine($"Write the next paragraph as the instruction says; then rewrite the short-term memory to include it, in at " +
            $"most {memoryWords} words; then write an instruction for the paragraph after it. Answer in exactly this form:");
        foreach (var marker in new[] { ParagraphMarker, MemoryMarker, InstructionMarker }) b.AppendLine(marker).AppendLine("...");
        return b.ToString();
    }

    /// <summary>
    /// The three sections of an answer, or null when a marker is missing, out of order, not at the start of a line, or a
    /// section is empty. Text before the first marker is ignored.
    /// </summary>
    public static StepOutput? Parse(string output)
    {
        string[] markers = [ParagraphMarker, MemoryMarker, InstructionMarker];
        var starts = new int[3];
        int from = 0;
        for (int i = 0; i < 3; i++)
        {
            int at = LineStart(output, markers[i], from);
            if (at < 0) return null;
            starts[i] = at;
            from = at + markers[i].Length;
        }
        string Section(int i) =>
            output[(starts[i] + markers[i].Length)..(i + 1 < 3 ? starts[i + 1] : output.Length)].Trim();
        var parts = new[] { Section(0), Section(1), Section(2) };
        return parts.Any(string.IsNullOrWhiteSpace) ? null : new StepOutput(parts[0], parts[1], parts[2]);
    }

    static int LineStart(string text, string marker, int from)
    {
        for (int at = text.IndexOf(marker, from, StringComparison.Ordinal); at >= 0;
             at = text.IndexOf(marker, at + 1, StringComparison.Ordinal))
            if (at == 0 || text[at - 1] == '\n') return at;
        return -1;
    }

    /// <summary>The first <paramref name="words"/> words of a text (whitespace-separated), and whether it was cut.</summary>
    public static (string Text, bool Cut) FirstWords(string text, int words)
    {
        var parts = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return parts.Length <= words ? (text.Trim(), false) : (string.Join(' ', parts.Take(words)), true);
    }
}
