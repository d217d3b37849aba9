using System.Text;

namespace Mnemo.Text;

/// <summary>A loaded text and where it came from; <see cref="Note"/> says why it is not the one asked for.</summary>
public sealed record Corpus(string Name, string Text, string Source, string? Note = null);

/// <summary>A corpus that cannot be read: a missing file, bytes that are not UTF-8, or (strict) a corpus not set up.</summary>
public sealed class CorpusException(string message) : Exception(message);

/// <summary>
/// Finds texts by name or path. Names are the exports of scripts/setup-corpora.sh in the corpora folder:
/// "kjv" (kjv.txt), "austen" (every austen-*.txt, in name order), "austen-emma" (one novel), or any other
/// "&lt;name&gt;.txt" / "&lt;name&gt;-*.txt" placed there. "generated" is <see cref="GeneratedText"/>. The folder is
/// $MNEMO_CORPORA, else the first "data/corpora" found walking up from the working directory or the program's.
/// A named corpus that is absent falls back to generated text with a <see cref="Corpus.Note"/>, unless strict;
/// an explicit file path must exist.
/// </summary>
public static class Corpora
{
    public const string Generated = "generated";
    public const string FolderVariable = "MNEMO_CORPORA";

    /// <summary>The corpora folder, or null when none exists.</summary>
    public static string? Folder() => IO.Paths.DataFolder(FolderVariable, "corpora");

    /// <summary>True for text that names a file rather than a corpus (it has a directory part or an extension).</summary>
    public static bool IsPath(string nameOrPath) =>
        nameOrPath.Contains('/') || nameOrPath.Contains('\\') || Path.HasExtension(nameOrPath);

    /// <summary>The files of a named corpus in the corpora folder (empty when it is not set up).</summary>
    public static string[] FilesOf(string name)
    {
        if (Folder() is not { } folder) return [];
        var exact = Path.Combine(folder, name + ".txt");
        if (File.Exists(exact)) return [exact];
        return Directory.GetFiles(folder, name + "-*.txt").Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Why <paramref name="nameOrPath"/> cannot be loaded, or null when it can (without reading it).</summary>
    public static string? Problem(string nameOrPath, bool strict)
    {
        if (nameOrPath == Generated) return null;
        if (IsPath(nameOrPath)) return File.Exists(nameOrPath) ? null : $"no such file \"{Path.GetFullPath(nameOrPath)}\"";
        if (!strict || FilesOf(nameOrPath).Length > 0) return null;
        return $"corpus \"{nameOrPath}\" is not set up (looked for {nameOrPath}.txt or {nameOrPath}-*.txt in " +
            $"{Folder() ?? $"${FolderVariable} or data/corpora"}); run scripts/setup-corpora.sh as root";
    }

    /// <summary>
    /// The text of a corpus name or file path. <paramref name="generatedSentences"/> sentences of generated text
    /// (seeded by <paramref name="generatedSeed"/>) stand in for "generated" and, unless strict, for a named corpus
    /// that is not set up.
    /// </summary>
    public static Corpus Load(string nameOrPath, bool strict = false, int generatedSeed = 0, int generatedSentences = 20_000)
    {
        Corpus Fallback(string? note) =>
            new(Generated, GeneratedText.Generate(generatedSeed, generatedSentences),
                $"generated (seed {generatedSeed}, {generatedSentences} sentences)", note);

        if (nameOrPath == Generated) return Fallback(null);
        if (Problem(nameOrPath, strict) is { } problem) throw new CorpusException(problem);
        if (IsPath(nameOrPath))
            return new(Path.GetFileNameWithoutExtension(nameOrPath), ReadUtf8(nameOrPath), Path.GetFullPath(nameOrPath));
        var files = FilesOf(nameOrPath);
        if (files.Length == 0)
            return Fallback($"corpus \"{nameOrPath}\" is not set up (run scripts/setup-corpora.sh); using generated text instead");
        return new(nameOrPath, string.Join("\n", files.Select(ReadUtf8)), string.Join(", ", files));
    }

    /// <summary>A file's text, decoded strictly as UTF-8 (a byte-order mark is skipped).</summary>
    public static string ReadUtf8(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CorpusException($"cannot read corpus file \"{Path.GetFullPath(path)}\": {e.Message}");
        }
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes).TrimStart('\uFEFF'); }
        catch (DecoderFallbackException e)
        {
            throw new CorpusException($"corpus file \"{Path.GetFullPath(path)}\" is not UTF-8 (invalid bytes at offset {e.Index})");
        }
    }
}
