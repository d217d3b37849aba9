using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mnemo.IO;

/// <summary>Marks a numeric setting's allowed range (inclusive). Checked when a config is bound.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RangeAttribute(double min, double max) : Attribute
{
    public double Min { get; } = min;
    public double Max { get; } = max;
}

/// <summary>One-line help for a setting, or for a config record (a task kind); shown by `mnemo list` and in errors.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Class)]
public sealed class HelpAttribute(string text) : Attribute
{
    public string Text { get; } = text;
}

/// <summary>A config record that has rules spanning several fields.</summary>
public interface IValidatedConfig
{
    /// <summary>Returns (field, problem) pairs; field is relative to this record.</summary>
    IEnumerable<(string Field, string Problem)> Validate();
}

/// <summary>An invalid configuration. The message names the file and field and says what is allowed.</summary>
public sealed class ConfigException(string message) : MnemoException(message);

/// <summary>
/// Strict JSON → record binding. Keys are snake_case property names; an unknown key, a wrong type, a value out of
/// its [Range] or a failed cross-field rule is an error naming the field path (e.g. "training.lr").
/// Works on a <see cref="JsonNode"/> so command-line overrides can edit the tree before binding. A field declared as a
/// <see cref="ConfigUnion"/> (the run config's task) holds the record its tag names.
/// </summary>
public static class ConfigBinder
{
    static readonly JsonNamingPolicy Naming = JsonNamingPolicy.SnakeCaseLower;

    /// <summary>The member of enum <paramref name="type"/> whose snake_case name is <paramref name="name"/>, or null.</summary>
    public static object? EnumNamed(Type type, string name) =>
        Enum.GetNames(type).FirstOrDefault(n => string.Equals(Naming.ConvertName(n), name, StringComparison.Ordinal)) is { } member
            ? Enum.Parse(type, member) : null;

    public static string KeyOf(PropertyInfo p) => Naming.ConvertName(p.Name);

    public static T Bind<T>(JsonNode? node, string source) where T : new() =>
        (T)BindValue(typeof(T), node, "", source)!;

    /// <summary>Comments and trailing commas are fine; a key given twice is an error (which value would win is a guess).</summary>
    static readonly JsonDocumentOptions Lenient = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        AllowDuplicateProperties = false,
    };

    /// <summary>Parses JSON text (comments and trailing commas allowed) into a node, with a clear error.</summary>
    public static JsonNode ParseText(string json, string source)
    {
        try
        {
            return JsonNode.Parse(json, documentOptions: Lenient) ?? throw new ConfigException(
                $"{source}: the file is empty (expected a JSON object)");
        }
        catch (JsonException e)
        {
            string where = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            throw new ConfigException($"{source}: not valid JSON{where}: {e.Message.Split('.')[0]}");
        }
    }

    /// <summary>
    /// Applies "path.to.field=value" overrides. The value is read as JSON when it parses (3e-4, true, [1,2]),
    /// else as a list of bare words when bracketed ([attention, lstm]), else as a string. The path must name an existing
    /// settable field of <typeparamref name="T"/>.
    /// </summary>
    /// <param name="option">the command-line option the overrides came from, for the error messages</param>
    public static void ApplyOverrides<T>(JsonObject root, IEnumerable<string> overrides, string option = "--set")
    {
        foreach (string raw in overrides)
        {
            int eq = raw.IndexOf('=');
            if (eq <= 0) throw new ConfigException($"{option} \"{raw}\": expected FIELD=VALUE, e.g. training.lr=3e-4");
            ApplyOverride(typeof(T), root, raw[..eq].Trim(), raw[(eq + 1)..].Trim(), option);
        }
    }

    /// <summary>
    /// One override. A union field's record type is the kind its object names (or the kind of its default); the kind
    /// itself may change only while the object holds nothing else, since which fields the new kind should keep is a
    /// guess. An object given for a whole union field of another kind replaces it.
    /// </summary>
    static void ApplyOverride(Type type, JsonObject root, string path, string text, string option)
    {
        string[] parts = path.Split('.');
        JsonObject target = root;
        ConfigUnion? union = null;                                            // of target, when target is a union field
        for (int i = 0; i < parts.Length; i++)
        {
            string here = string.Join('.', parts[..(i + 1)]), parent = string.Join('.', parts[..i]);
            if (union is not null && parts[i] == union.Key)
            {
                if (i != parts.Length - 1) throw new ConfigException($"{option} {path}: \"{here}\" is not a section");
                SetKind(target, union, ParseScalar(text, path), path, parent);
                return;
            }
            var prop = FindProperty(type, parts[i]) ?? throw new ConfigException(
                $"{option} {path}: unknown field \"{here}\". Allowed here: " +
                $"{string.Join(", ", (union is null ? [] : new[] { union.Key }).Concat(Keys(type)))}");
            var declared = Nullable.GetUnderlyingType(prop.PropertyType) ?? prop.PropertyType;
            var childUnion = ConfigUnion.Of(declared);
            if (i == parts.Length - 1)
            {
                // An object given for a section sets the fields it names and keeps the others.
                var value = ParseScalar(text, path);
                if (value is JsonObject fields && target[parts[i]] is JsonObject existing && (IsRecord(declared)
                    || (childUnion is not null && (fields[childUnion.Key] is null
                        || fields[childUnion.Key]!.ToJsonString() == existing[childUnion.Key]?.ToJsonString()))))
                    Merge(existing, fields);
                else target[parts[i]] = value;
                return;
            }
            if (!IsRecord(declared) && childUnion is null) throw new ConfigException($"{option} {path}: \"{here}\" is not a section");
            if (target[parts[i]] is not JsonObject child)
            {
                child = new JsonObject();
                if (childUnion is not null) child[childUnion.Key] = DefaultKind(type, prop, childUnion, path, here);
                target[parts[i]] = child;
            }
            (target, union) = (child, childUnion);
            type = childUnion is null ? declared : KindType(childUnion, child, path, here);
        }
    }

    /// <summary>The record type of a union field's object, from its tag.</summary>
    static Type KindType(ConfigUnion union, JsonObject node, string path, string field) =>
        node[union.Key] is JsonValue v && v.GetValueKind() == JsonValueKind.String && union.TypeOf(v.GetValue<string>()) is { } t
            ? t
            : throw new ConfigException($"--set {path}: \"{field}\" names no {union.Key} ({union.Allowed}), so its fields are unknown");

    /// <summary>The kind a union field has by default (the value a new parent record holds).</summary>
    static string DefaultKind(Type parentType, PropertyInfo prop, ConfigUnion union, string path, string field)
    {
        object? value = parentType.GetConstructor(Type.EmptyTypes) is null ? null : prop.GetValue(Activator.CreateInstance(parentType));
        return value is null
            ? throw new ConfigException($"--set {path}: \"{field}\" is not set; give it whole, with its {union.Key}")
            : union.KindOf(value.GetType());
    }

    static void SetKind(JsonObject target, ConfigUnion union, JsonNode? value, string path, string field)
    {
        if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.String || union.TypeOf(v.GetValue<string>()) is null)
            throw new ConfigException($"--set {path}: expected {union.Allowed}, got {value?.ToJsonString() ?? "null"}");
        string kind = v.GetValue<string>(), now = target[union.Key]?.ToJsonString().Trim('"') ?? "";
        var others = target.Select(p => p.Key).Where(k => k != union.Key).ToList();
        if (kind != now && others.Count > 0)
            throw new ConfigException($"--set {path}={kind}: \"{field}\" is {now} and sets {string.Join(", ", others)}, which " +
                $"{kind} may not have; give the whole {field} instead, e.g. --set '{field}={{\"{union.Key}\": \"{kind}\", …}}'");
        target[union.Key] = kind;
    }

    static JsonNode? ParseScalar(string text, string path)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(text, documentOptions: Lenient); }
        catch (JsonException e) when (e.Message.Contains("duplicate", StringComparison.OrdinalIgnoreCase))
        {
            throw new ConfigException($"--set {path}: a key is given twice in {text}");
        }
        catch (JsonException) when (text.StartsWith('[') && text.EndsWith(']'))
        {
            // A list of bare words, as a shell passes them without quotes: [attention, lstm]
            var items = text[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            return new JsonArray([.. items.Select(item => ParseScalar(item, path))]);
        }
        catch (JsonException) { return JsonValue.Create(text); }
        return node;
    }

    /// <summary>
    /// A config file over <paramref name="defaults"/>, then "field=value" overrides. The defaults are spelled out first, so
    /// a section the file or an override names keeps these defaults for the fields it leaves out (a bare section would
    /// otherwise start from its type's own defaults).
    /// </summary>
    public static T LoadOver<T>(T defaults, string? file, IEnumerable<string> overrides, string defaultSource) where T : new()
    {
        var root = (JsonObject)JsonNode.Parse(ToJson(defaults))!;
        if (file is not null)
        {
            Paths.CheckReadable(file, "config file");
            if (ParseText(File.ReadAllText(file), file) is not JsonObject given)
                throw new ConfigException($"{file}: expected a JSON object at the top level");
            Merge(root, given);
        }
        ApplyOverrides<T>(root, overrides);
        return Bind<T>(root, file ?? defaultSource);
    }

    /// <summary>Deep-merges <paramref name="from"/> into <paramref name="into"/>: sections merge, every other value of
    /// <paramref name="from"/> replaces <paramref name="into"/>'s.</summary>
    public static void Merge(JsonObject into, JsonObject from)
    {
        foreach (var (key, value) in from.ToList())
        {
            if (value is JsonObject child && into[key] is JsonObject existing) Merge(existing, child);
            else
            {
                from.Remove(key);
                into[key] = value;
            }
        }
    }

    public static IEnumerable<string> Keys(Type t) => Settable(t).Select(KeyOf);

    static IEnumerable<PropertyInfo> Settable(Type t) =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite);

    static PropertyInfo? FindProperty(Type t, string key) => Settable(t).FirstOrDefault(p => KeyOf(p) == key);

    static readonly NullabilityInfoContext Nullability = new();

    /// <summary>Whether a field may be null: a Nullable value type, or a reference declared with '?'.</summary>
    static bool AcceptsNull(PropertyInfo p)
    {
        if (Nullable.GetUnderlyingType(p.PropertyType) is not null) return true;
        if (p.PropertyType.IsValueType) return false;
        lock (Nullability) return Nullability.Create(p).WriteState == NullabilityState.Nullable;
    }

    static bool IsRecord(Type t) => t.IsClass && t != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(t);

    static object? BindValue(Type type, JsonNode? node, string path, string source)
    {
        string Where() => path.Length == 0 ? source : $"{source}: field \"{path}\"";
        var underlying = Nullable.GetUnderlyingType(type);
        if (node is null)
        {
            if (underlying != null || (!type.IsValueType && type != typeof(string) && !IsRecord(type))) return null;
            throw new ConfigException($"{Where()}: null is not allowed (expected {Describe(type)})");
        }
        type = underlying ?? type;

        if (ConfigUnion.Of(type) is { } union)
        {
            if (node is not JsonObject tagged) throw new ConfigException($"{Where()}: expected an object, got {Kind(node)}");
            string tagPath = path.Length == 0 ? union.Key : $"{path}.{union.Key}";
            if (tagged[union.Key] is not JsonValue tag)
                throw new ConfigException($"{Where()}: needs \"{union.Key}\", {union.Allowed}");
            var kind = tag.GetValueKind() == JsonValueKind.String ? union.TypeOf(tag.GetValue<string>()) : null;
            if (kind is null)
                throw new ConfigException($"{source}: field \"{tagPath}\": expected {union.Allowed}, got {tag.ToJsonString()}");
            return BindRecord(kind, tagged, path, source, union.Key);
        }
        if (IsRecord(type))
        {
            if (node is not JsonObject obj) throw new ConfigException($"{Where()}: expected an object, got {Kind(node)}");
            return BindRecord(type, obj, path, source, tag: null);
        }

        if (type.IsArray)
        {
            if (node is not JsonArray arr) throw new ConfigException($"{Where()}: expected a list, got {Kind(node)}");
            var element = type.GetElementType()!;
            var result = Array.CreateInstance(element, arr.Count);
            for (int i = 0; i < arr.Count; i++) result.SetValue(BindValue(element, arr[i], $"{path}[{i}]", source), i);
            return result;
        }

        if (node is not JsonValue val) throw new ConfigException($"{Where()}: expected {Describe(type)}, got {Kind(node)}");
        var elementKind = val.GetValueKind();
        if (type == typeof(string))
            return elementKind == JsonValueKind.String ? val.GetValue<string>() : throw Wrong();
        if (type == typeof(bool))
            return elementKind is JsonValueKind.True or JsonValueKind.False ? val.GetValue<bool>() : throw Wrong();
        if (type.IsEnum)
        {
            if (elementKind != JsonValueKind.String) throw Wrong();
            return EnumNamed(type, val.GetValue<string>()) ?? throw Wrong();
        }
        if (elementKind != JsonValueKind.Number) throw Wrong();
        double d = val.GetValue<JsonElement>().GetDouble();
        if (type == typeof(double)) return d;
        if (type == typeof(float)) return (float)d;
        if (type == typeof(int) || type == typeof(long))
        {
            if (d != Math.Floor(d) || d < (type == typeof(int) ? int.MinValue : long.MinValue)
                || d > (type == typeof(int) ? int.MaxValue : long.MaxValue))
                throw new ConfigException($"{Where()}: expected a whole number, got {val.ToJsonString()}");
            return type == typeof(int) ? (object)(int)d : (long)d;
        }
        throw new InvalidOperationException($"config type {type.Name} is not supported by the binder");

        ConfigException Wrong() => new($"{Where()}: expected {Describe(type)}, got {val.ToJsonString()}");
    }

    /// <summary>A record from an object; <paramref name="tag"/> is a union's tag key, already read.</summary>
    static object BindRecord(Type type, JsonObject obj, string path, string source, string? tag)
    {
        object instance = Activator.CreateInstance(type)!;
        foreach (var (key, child) in obj)
        {
            if (key == tag) continue;
            string childPath = path.Length == 0 ? key : $"{path}.{key}";
            var prop = FindProperty(type, key) ?? throw new ConfigException(
                $"{source}: unknown field \"{childPath}\". Allowed{(path.Length == 0 ? "" : $" in \"{path}\"")}: " +
                $"{string.Join(", ", (tag is null ? [] : new[] { tag }).Concat(Keys(type)))}");
            if (child is null)
            {
                if (!AcceptsNull(prop))
                    throw new ConfigException($"{source}: field \"{childPath}\": " +
                        $"null is not allowed (expected {Describe(prop.PropertyType)})");
                prop.SetValue(instance, null);
                continue;
            }
            object? value = BindValue(prop.PropertyType, child, childPath, source);
            CheckRange(prop, value, childPath, source);
            prop.SetValue(instance, value);
        }
        if (instance is IValidatedConfig v)
            foreach (var (field, problem) in v.Validate())
                throw new ConfigException($"{source}: field \"{(path.Length == 0 ? field : $"{path}.{field}")}\": {problem}");
        return instance;
    }

    static void CheckRange(PropertyInfo prop, object? value, string path, string source)
    {
        if (value is null || prop.GetCustomAttribute<RangeAttribute>() is not { } r) return;
        double d = Convert.ToDouble(value, CultureInfo.InvariantCulture);
        if (d < r.Min || d > r.Max)
            throw new ConfigException($"{source}: field \"{path}\" = {Format(d)} is out of range; " +
                $"allowed {Format(r.Min)} … {Format(r.Max)}");
    }

    static string Format(double d) => d.ToString("G6", CultureInfo.InvariantCulture);

    public static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string)) return "a string";
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(int) || type == typeof(long)) return "a whole number";
        if (type == typeof(double) || type == typeof(float)) return "a number";
        if (type.IsEnum) return "one of " + string.Join(", ", Enum.GetNames(type).Select(n => $"\"{Naming.ConvertName(n)}\""));
        if (type.IsArray) return $"a list of {Describe(type.GetElementType()!)}";
        return "an object";
    }

    static string Kind(JsonNode node) => node switch
    {
        JsonObject => "an object",
        JsonArray => "a list",
        _ => node.ToJsonString(),
    };

    /// <summary>Serialises a bound config back to the same snake_case JSON the binder reads.</summary>
    public static string ToJson<T>(T config) => JsonSerializer.Serialize(config, WriteOptions);

    public static readonly JsonSerializerOptions WriteOptions = new()
    {
        PropertyNamingPolicy = Naming,
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(Naming) },
    };
}
