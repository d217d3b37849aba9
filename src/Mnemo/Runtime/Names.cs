namespace Mnemo.Runtime;

/// <summary>
/// Names of mechanisms as users type them. One spelling everywhere: snake_case, as in configs (`gated_delta`,
/// `gated_delta_net`); a name typed with hyphens gets an error that says so.
/// </summary>
static class Names
{
    /// <summary>An enum value as configs spell it: <c>GatedDeltaNet</c> → "gated_delta_net".</summary>
    public static string Of(Enum value) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    /// <summary>The position of <paramref name="name"/> in <paramref name="allowed"/> (case-insensitive), or -1.</summary>
    public static int Find(IReadOnlyList<string> allowed, string? name)
    {
        for (int i = 0; i < allowed.Count; i++)
            if (string.Equals(allowed[i], name?.Trim(), StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }

    /// <summary>The error for a name not in <paramref name="allowed"/>, naming what was expected.</summary>
    public static MnemoException Unknown(string what, string? name, IEnumerable<string> allowed)
    {
        var list = allowed.ToList();
        var snake = name?.Trim().Replace('-', '_');
        var hint = snake != name?.Trim() && Find(list, snake) >= 0 ? $" (names are snake_case, as in configs: \"{snake}\")" : "";
        return new MnemoException($"unknown {what} \"{name}\"{hint}; allowed: {string.Join(", ", list)}");
    }
}
