using Mnemo.Runtime;

namespace Mnemo.Tests;

/// <summary>
/// Tests that touch libtorch's global generator or thread count run in this one serial collection, so seeds
/// set by one test are not consumed by another running in parallel.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchCollection
{
    public const string Name = "torch";
}

public static class Tmp
{
    /// <summary>A fresh folder under the system temp folder, removed when disposed.</summary>
    public sealed class Dir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mnemo-tests-" + Guid.NewGuid().ToString("N"));
        public Dir() => Directory.CreateDirectory(Path);
        public string this[string name] => System.IO.Path.Combine(Path, name);
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }

    static Tmp() => TorchRuntime.Initialise();
}
