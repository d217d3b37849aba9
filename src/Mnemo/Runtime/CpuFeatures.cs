namespace Mnemo.Runtime;

/// <summary>The CPU's model name, vendor (e.g. GenuineIntel, AuthenticAMD) and what it offers matrix products, from
/// Linux's /proc/cpuinfo ("unknown" and no features where it cannot be read).</summary>
public sealed record CpuFeatures(string Model, bool Avx512, bool AmxBf16, bool Avx512Bf16, string Vendor = "unknown")
{
    public static CpuFeatures Read()
    {
        string model = "unknown", vendor = "unknown";
        string flags = "";
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (model == "unknown" && line.StartsWith("model name", StringComparison.Ordinal))
                    model = line[(line.IndexOf(':') + 1)..].Trim();
                if (vendor == "unknown" && line.StartsWith("vendor_id", StringComparison.Ordinal))
                    vendor = line[(line.IndexOf(':') + 1)..].Trim();
                if (flags.Length == 0 && line.StartsWith("flags", StringComparison.Ordinal)) flags = line[(line.IndexOf(':') + 1)..];
                if (model != "unknown" && vendor != "unknown" && flags.Length > 0) break;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var set = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        return new CpuFeatures(model, set.Contains("avx512f"), set.Contains("amx_bf16"), set.Contains("avx512_bf16"), vendor);
    }

    /// <summary>What this CPU's flags offer bf16 matmuls, in one line: AMX tiles, AVX512-BF16 dot products, or neither
    /// (then libtorch converts bf16 to fp32 and back, and a bf16 matmul is slower than an fp32 one). Whether libtorch
    /// uses them is another matter: <see cref="Bf16Verdict"/> says what was measured. Without AMX tiles, bf16 training
    /// keeps libtorch's attention kernel in fp32, and the line says so.</summary>
    public string Bf16Support => Bf16SupportOf(AmxBf16, Avx512Bf16);

    public static string Bf16SupportOf(bool amx, bool avx512Bf16) =>
        amx ? "AMX-BF16 (bf16 matrix tiles)"
        : (avx512Bf16 ? "AVX512-BF16, no AMX (bf16 dot products)"
            : "none: no bf16 instructions, so bf16 matmuls are emulated and slower than fp32") + NoAmxAttention;

    /// <summary>What <see cref="MixedPrecision.Enter"/> does without AMX (docs/architecture.md#bf16-matmuls).</summary>
    const string NoAmxAttention = "; under bf16, attention's kernel stays fp32 (no AMX)";

    /// <summary>The flags and the measured bf16/fp32 matmul speed-up (<see cref="MatmulPeak.Bf16Speedup"/>) in one line,
    /// saying so when bf16 training will run slower than fp32.</summary>
    public string Bf16Verdict(double speedup) => Bf16VerdictOf(Bf16Support, speedup);

    public static string Bf16VerdictOf(string support, double speedup) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{support}; bf16 matmul measured {speedup:F2}× fp32 here") +
        (speedup < 1 ? ": bf16 training will run slower than fp32 on this machine" : "");
}
