using System.Globalization;
using Mnemo.IO;
using Mnemo.Layers;

namespace Mnemo.Training;

/// <summary>
/// Refuses, before anything is allocated, a model that cannot fit: libtorch would otherwise fail deep inside an
/// allocation with a backtrace or an OutOfMemoryException (d_model 16384 with a 2^20 vocabulary asked for 68 GB).
/// </summary>
static class MemoryEstimate
{
    /// <summary>
    /// A lower bound of the bytes training needs, from the config alone: 16 per parameter (fp32 weights, gradients and
    /// AdamW's two moments) for the token embedding (V·d) and each layer's q, k, v and output projections (4·d²). Every
    /// model has at least these, and more (other weights, activations), so a config refused by it cannot fit.
    /// </summary>
    public static long TrainingBytesLowerBound(ModelConfig c) =>
        16L * ((long)c.VocabSize * c.DModel + c.NumLayers * 4L * c.DModel * c.DModel);

    /// <summary>MemAvailable from /proc/meminfo in bytes, or null where there is none.</summary>
    public static long? AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>Throws a config error naming the estimate and what is available when the lower bound exceeds it.</summary>
    public static void Check(ModelConfig model, long? available)
    {
        long need = TrainingBytesLowerBound(model);
        if (available is not { } have || need <= have) return;
        string Gb(long bytes) => (bytes / 1e9).ToString("F1", CultureInfo.InvariantCulture);
        throw new ConfigException(
            $"model.vocab_size {model.VocabSize} × model.d_model {model.DModel} × model.num_layers {model.NumLayers}: training needs " +
            $"at least {Gb(need)} GB (16 bytes per parameter of the embedding and projections) and {Gb(have)} GB is available; " +
            "shrink the model, or set training.memory_check=false to try anyway");
    }
}
