using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mnemo.Interop;

/// <summary>
/// Reads a Hugging Face config.json key by key (docs/interop.md#what-imports): every key read is marked used, every
/// value that cannot be honoured is a problem, and <see cref="Unknown"/> lists the keys nobody read, so that one error
/// can name them all.
/// </summary>
public sealed class HfConfigKeys(JsonObject config, IEnumerable<string> inert)
{
    readonly HashSet<string> _used = [.. inert];

    /// <summary>What cannot be honoured, one phrase each.</summary>
    public List<string> Problems { get; } = [];

    public JsonObject Config => config;

    /// <summary>The key's value, or <paramref name="fallback"/> when it is absent; a value of another type is a problem.</summary>
    public T Get<T>(string key, T fallback)
    {
        _used.Add(key);
        var node = config[key];
        if (node is null) return fallback;
        try { return node.GetValue<T>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            Problems.Add($"\"{key}\" is {node.ToJsonString()}, expected a {typeof(T).Name.ToLowerInvariant()}");
            return fallback;
        }
    }

    /// <summary>Marks the key used and returns its node (null when absent).</summary>
    public JsonNode? Node(string key)
    {
        _used.Add(key);
        return config[key];
    }

    /// <summary>The key must be absent or null.</summary>
    public void RequireNull(string key, string why)
    {
        if (Node(key) is { } node && node.GetValueKind() != JsonValueKind.Null) Problems.Add($"\"{key}\": {node.ToJsonString()} ({why})");
    }

    /// <summary>The key must be <paramref name="wanted"/> (absent means <paramref name="fallback"/>).</summary>
    public void Require<T>(string key, T fallback, T wanted, string why)
    {
        var value = Get(key, fallback);
        if (!EqualityComparer<T>.Default.Equals(value, wanted)) Problems.Add($"\"{key}\": {Json(value)} ({why})");
    }

    /// <summary>Marks keys used without reading them.</summary>
    public void Ignore(params string[] keys) => _used.UnionWith(keys);

    /// <summary>A problem for every key nobody read.</summary>
    public void Unknown(string modelType)
    {
        foreach (var key in config.Select(kv => kv.Key).Where(k => !_used.Contains(k)))
            Problems.Add($"\"{key}\" (not a key Mnemo knows for {modelType}; it may change the math)");
    }

    /// <summary>
    /// Parses config.json as Python's json module writes it: a float that is infinite or NaN is the bare word Infinity,
    /// -Infinity or NaN, which is not JSON. Those words (outside strings) become the strings "Infinity", "-Infinity",
    /// "NaN", which <see cref="Number"/> reads back.
    /// </summary>
    public static JsonNode? Parse(string text)
    {
        var json = new StringBuilder(text.Length);
        bool inString = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (inString)
            {
                json.Append(c);
                if (c == '\\' && i + 1 < text.Length) json.Append(text[++i]);
                else if (c == '"') inString = false;
                continue;
            }
            string? word = c switch
            {
                'I' when Starts(text, i, "Infinity") => "Infinity",
                '-' when Starts(text, i, "-Infinity") => "-Infinity",
                'N' when Starts(text, i, "NaN") => "NaN",
                _ => null,
            };
            if (word is not null)
            {
                json.Append('"').Append(word).Append('"');
                i += word.Length - 1;
                continue;
            }
            if (c == '"') inString = true;
            json.Append(c);
        }
        return JsonNode.Parse(json.ToString());
    }

    static bool Starts(string text, int at, string word) => string.CompareOrdinal(text, at, word, 0, word.Length) == 0;

    /// <summary>A JSON number, or one of Python's non-finite words as <see cref="Parse"/> leaves them; null otherwise.</summary>
    public static double? Number(JsonNode? node) => node?.GetValueKind() switch
    {
        JsonValueKind.Number => node.GetValue<double>(),
        JsonValueKind.String => node.GetValue<string>() switch
        {
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => null,
        },
        _ => null,
    };

    public static string Json<T>(T value) => value switch
    {
        null => "null",
        string s => $"\"{s}\"",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
