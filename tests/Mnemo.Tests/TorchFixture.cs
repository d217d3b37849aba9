using System.Runtime.CompilerServices;
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

/// <summary>
/// libtorch is set up before any test runs, as every command does before its first tensor: MKL fixes its kernels at
/// its first product (docs/architecture.md#mkl-on-amd), so without this the kernels a test process runs would depend on
/// which test xunit happened to start first, and a test comparing with a `mnemo` process could see two sets of kernels.
/// </summary>
static class TestProcess
{
#pragma warning disable CA2255 // a test assembly's process set-up is what module initialisers are for
    [ModuleInitializer]
    internal static void Initialise() => TorchRuntime.Initialise();
#pragma warning restore CA2255
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
