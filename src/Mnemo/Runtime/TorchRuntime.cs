using TorchSharp;

namespace Mnemo.Runtime;

/// <summary>Process-wide libtorch set-up: native load check, thread count, seeding.</summary>
public static class TorchRuntime
{
    static readonly object Gate = new();
    static bool _initialised;

    /// <summary>
    /// Loads libtorch once, tunes the native allocator (<see cref="NativeAllocator"/>) and applies the thread count
    /// (0 = libtorch's default, i.e. all cores). <paramref name="hugePages"/>: see <see cref="NativeAllocator.Tune"/>; only the
    /// first call decides it.
    /// Throws <see cref="MnemoException"/> with the real reason when the native library cannot load.
    /// </summary>
    public static void Initialise(int threads = 0, bool hugePages = false)
    {
        lock (Gate)
        {
            if (!_initialised)
            {
                NativeAllocator.Tune(hugePages);
                try
                {
                    using var probe = torch.ones(1);
                }
                catch (TypeInitializationException e)
                {
                    throw new MnemoException(
                        "libtorch could not be loaded. On Debian 12 this happens when the build step that patches " +
                        "libLibTorchSharp.so (build/TorchSharpNativeFix.targets) did not run: rebuild with `dotnet build`. " +
                        $"TorchSharp said: {FirstLine(e.InnerException?.Message ?? e.Message)}", e);
                }
                MklDispatch.Apply();                                              // before MKL's first product fixes its kernels
                _initialised = true;
            }
            if (threads > 0 && torch.get_num_threads() != threads) torch.set_num_threads(threads);
        }
    }

    /// <summary>Seeds libtorch's global generator. Every other random source in Mnemo takes its own seed.</summary>
    public static void Seed(long seed)
    {
        Initialise();
        torch.random.manual_seed(seed);
    }

    static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();
}
