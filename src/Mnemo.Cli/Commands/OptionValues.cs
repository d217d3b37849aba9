using System.Globalization;
using Mnemo.IO;
using Mnemo.Layers;

namespace Mnemo.Cli.Commands;

/// <summary>Checks and formats the experiment commands share: a bad count names its option; shares print as percentages.</summary>
static class OptionValues
{
    public static int Positive(int value, string option) =>
        value >= 1 ? value : throw new MnemoException($"{option} {value}: must be at least 1");

    public static int NonNegative(int value, string option) =>
        value >= 0 ? value : throw new MnemoException($"{option} {value}: must be 0 or more");

    /// <summary>The mixers named by --mixers (each once, in order), or <paramref name="fallback"/> when none are.</summary>
    public static MixerKind[] Mixers(string[]? names, string fallback) =>
        [.. (names is { Length: > 0 } ? names : [fallback])
            .Select(name => ConfigBinder.EnumNamed(typeof(MixerKind), name.Trim()) as MixerKind?
                ?? throw new MnemoException($"--mixers: unknown mixer \"{name}\" (`mnemo list` shows them)")).Distinct()];

    /// <summary>A share in [0, 1] as "12.3 %".</summary>
    public static string Percent(double share) => share.ToString("P1", CultureInfo.InvariantCulture);
}
