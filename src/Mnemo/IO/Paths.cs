using System.Runtime.InteropServices;

namespace Mnemo.IO;

/// <summary>What a path names, following symbolic links.</summary>
enum PathKind
{
    Missing,
    /// <summary>A regular file.</summary>
    Regular,
    /// <summary>A character device or a pipe: a stream, not a file (/dev/stdout, /dev/null, a FIFO).</summary>
    Stream,
    /// <summary>A directory, block device or socket.</summary>
    Other,
}

/// <summary>Checks on paths before Mnemo reads or writes them.</summary>
static class Paths
{
    /// <summary>
    /// A data folder set up by a script in scripts/: $<paramref name="variable"/> when set (null when it does not exist),
    /// else the first "data/<paramref name="name"/>" found walking up from the working directory or the program's.
    /// </summary>
    public static string? DataFolder(string variable, string name)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } env) return Directory.Exists(env) ? env : null;
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                if (Directory.Exists(Path.Combine(dir.FullName, "data", name))) return Path.Combine(dir.FullName, "data", name);
        return null;
    }

    public static PathKind KindOf(string path)
    {
        if (Directory.Exists(path)) return PathKind.Other;
        if (!File.Exists(path)) return PathKind.Missing;
        // .NET reports no file type beyond directories and links, so ask stat(2). The layout of struct stat read here
        // (st_mode at byte 24) is x86-64 Linux's, the only platform Mnemo's natives ship for.
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return PathKind.Regular;
        var buffer = new byte[256];
        if (Stat(path, buffer) != 0) return PathKind.Regular;   // vanished meanwhile: the read or write will say what is wrong
        uint type = BitConverter.ToUInt32(buffer, 24) & 0xF000;
        return type switch
        {
            0x8000 => PathKind.Regular,                 // S_IFREG
            0x2000 or 0x1000 => PathKind.Stream,        // S_IFCHR, S_IFIFO
            _ => PathKind.Other,                        // S_IFDIR, S_IFBLK, S_IFSOCK
        };
    }

    /// <summary>
    /// Checks that <paramref name="path"/> is a regular file to read (<paramref name="what"/> names it in errors): a
    /// directory or a missing file is an error saying which, and so is a pipe or device, whose read could block forever.
    /// </summary>
    public static void CheckReadable(string path, string what)
    {
        switch (KindOf(path))
        {
            case PathKind.Missing: throw new MnemoException($"{path}: no such file");
            case PathKind.Regular: return;
            default:
                throw new MnemoException(Directory.Exists(path)
                    ? $"{path}: is a directory, not a {what}"
                    : $"{path}: is not a regular file (a pipe, device or socket); give a {what} on disk");
        }
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
}
