using System.Runtime.InteropServices;

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
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(text);
        });

    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        switch (FileKindOf(full))
        {
            case FileKind.Stream:
                using (var stream = new FileStream(full, FileMode.Open, FileAccess.Write))
                {
                    write(stream);
                    stream.Flush();
                }
                return;
            case FileKind.Other:
                throw new MnemoException($"{path}: exists and is not a regular file (a directory, block device or socket); " +
                                         "choose another output path");
            case FileKind.Regular when new FileInfo(full).LinkTarget is not null:
                full = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)!.FullName;
                break;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = $"{full}.tmp-{Guid.NewGuid():N}";
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
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>What a path names, following symbolic links.</summary>
    public enum FileKind { Missing, Regular, Stream, Other }

    public static FileKind FileKindOf(string path)
    {
        if (Directory.Exists(path)) return FileKind.Other;
        if (!File.Exists(path)) return FileKind.Missing;
        // .NET reports no file type beyond directories and links, so ask stat(2). The layout of struct stat read here
        // (st_mode at byte 24) is x86-64 Linux's, the only platform Mnemo's natives ship for.
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return FileKind.Regular;
        var buffer = new byte[256];
        if (Stat(path, buffer) != 0) return FileKind.Regular;   // vanished meanwhile: the write will say what is wrong
        uint type = BitConverter.ToUInt32(buffer, 24) & 0xF000;
        return type switch
        {
            0x8000 => FileKind.Regular,                 // S_IFREG
            0x2000 or 0x1000 => FileKind.Stream,        // S_IFCHR, S_IFIFO
            _ => FileKind.Other,                        // S_IFDIR, S_IFBLK, S_IFSOCK
        };
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
}
