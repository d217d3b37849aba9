namespace Mnemo.Tests;

/// <summary>The repository the tests run from, for tests that read its sources and docs.</summary>
public static class Repository
{
    /// <summary>The folder holding Mnemo.slnx, found by walking up from the test binaries.</summary>
    public static string Root { get; } = FindRoot();

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Mnemo.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Mnemo.slnx above {AppContext.BaseDirectory}");
    }
}
