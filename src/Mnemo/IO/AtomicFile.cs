namespace Mnemo.IO;

/// <summary>
/// Writes that never leave a half-written file: write a temp file beside the target, flush, rename. What the target
/// already is decides how (docs/cli.md#behaviour):
/// <list type="bullet">
/// <item>nothing, or a regular file: the atomic write; through a symbolic link, the file it points at is replaced
/// and the link stays;</item>
/// <item>a character device or a pipe (<c>/dev/stdout</c>, <c>/dev/null</c>, a FIFO): the stream the user named,
/// written in place — a rename would replace the device node with a regular file;</item>
/// <item>anything else (a directory, a block device, a socket): refused with an error naming the path.</item>
/// </list>
/// </summary>
static class AtomicFile
{
    const string TempMarker = ".tmp-";

    /// <summary>
    /// Deletes the temp files that writes into <paramref name="folder"/> left when the process was killed mid-write
    /// (<c>name.tmp-</c> and 32 hex digits). Only call it where no other process is writing.
    /// </summary>
    public static void RemoveLeftovers(string folder)
    {
        if (!Directory.Exists(folder)) return;
        foreach (var file in Directory.EnumerateFiles(folder, "*" + TempMarker + "*"))
        {
            string suffix = file[(file.LastIndexOf(TempMarker, StringComparison.Ordinal) + TempMarker.Length)..];
            if (suffix.Length == 32 && suffix.All(char.IsAsciiHexDigitLower)) File.Delete(file);
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(text);
        });

    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        switch (Paths.KindOf(full))
        {
            case PathKind.Stream:
                using (var stream = new FileStream(full, FileMode.Open, FileAccess.Write))
                {
                    write(stream);
                    stream.Flush();
                }
                return;
            case PathKind.Other:
                throw new MnemoException($"{path}: exists and is not a regular file (a directory, block device or socket); " +
                                         "choose another output path");
            case PathKind.Regular:
                full = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;  // null: not a link
                break;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = $"{full}{TempMarker}{Guid.NewGuid():N}";
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            // Best effort: the exception that brought us here is the one worth reporting.
            try { File.Delete(tmp); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
