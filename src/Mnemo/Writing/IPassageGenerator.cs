namespace Mnemo.Writing;

/// <summary>
/// What RecurrentGPT's loop asks of a language model: a completion of a prompt. Generate's attempt counts the retries
/// of one step (0 first), so a sampler can draw differently when an output could not be read.
/// </summary>
public interface IPassageGenerator
{
    /// <summary>A short name for logs and reports.</summary>
    string Name { get; }

    string Generate(string prompt, int attempt);
}

/// <summary>Turns a text into a vector for the long-term memory's similarity search.</summary>
public interface ITextEmbedder
{
    string Name { get; }

    float[] Embed(string text);
}
