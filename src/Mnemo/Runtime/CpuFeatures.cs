namespace Mnemo.Runtime;

/// <summary>The CPU's model name and what it offers matrix products, from Linux's /proc/cpuinfo ("unknown" and no
/// features where it cannot be read).</summary>
public sealed record CpuFeatures(string Model, bool Avx512, bool AmxBf16, bool Avx512Bf16)
{
    public static CpuFeatures Read()
    {
        string model = "unknown";
        string flags = "";
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (model == "unknown" && line.StartsWith("model name", StringComparison.Ordinal))
                    model = line[(line.IndexOf(':') + 1)..].Trim();
                if (flags.Length == 0 && line.StartsWith("flags", StringComparison.Ordinal)) flags = line[(line.IndexOf(':') + 1)..];
                if (model != "unknown" && flags.Length > 0) break;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var set = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        return new CpuFeatures(model, set.Contains("avx512f"), set.Contains("amx_bf16"), set.Contains("avx512_bf16"));
    }

    /// <summary>Whether bf16 matmuls run on bf16 instructions here (AMX or AVX512-BF16).</summary>
    public bool FastBf16 => AmxBf16 || Avx512Bf16;

    /// <summary>What this CPU offers bf16 matmuls, in one line: AMX tiles, AVX512-BF16 dot products, or neither (then
    /// libtorch converts bf16 to fp32 and back, and a bf16 matmul is slower than an fp32 one).</summary>
    public string Bf16Support => Bf16SupportOf(AmxBf16, Avx512Bf16);

    public static string Bf16SupportOf(bool amx, bool avx512Bf16) =>
        amx ? "AMX-BF16: fast bf16 matmuls (tiles)"
        : avx512Bf16 ? "AVX512-BF16, no AMX: fast bf16 dot products"
        : "none: no bf16 instructions, so bf16 matmuls are emulated and slower than fp32";
}
