using System.Reflection;
using System.Text.Json.Serialization;

namespace Mnemo.IO;

/// <summary>
/// A config field that holds one of several records, named by a tag key: <c>"task": {"kind": "passkey", …}</c>. The
/// field's declared type carries System.Text.Json's own polymorphism attributes, [JsonPolymorphic] with the tag key
/// and one [JsonDerivedType] per kind, so the one declaration drives both how <see cref="ConfigBinder"/> reads the field
/// and how it is written.
/// </summary>
public sealed record ConfigUnion(string Key, IReadOnlyList<(string Kind, Type Type)> Kinds)
{
    /// <summary>The union a declared type stands for, or null when it is no union.</summary>
    public static ConfigUnion? Of(Type declared)
    {
        if (declared.GetCustomAttribute<JsonPolymorphicAttribute>() is not { } poly) return null;
        var kinds = declared.GetCustomAttributes<JsonDerivedTypeAttribute>()
            .Select(d => ((string)d.TypeDiscriminator!, d.DerivedType)).ToList();
        string key = poly.TypeDiscriminatorPropertyName ?? "$type";
        foreach (var (kind, type) in kinds)
            if (ConfigBinder.Keys(type).Contains(key))
                throw new InvalidOperationException($"{type.Name} has a field \"{key}\", the tag of {declared.Name}; rename the field");
        return new ConfigUnion(key, kinds);
    }

    public IEnumerable<string> Names => Kinds.Select(k => k.Kind);

    /// <summary>The record type of a kind, or null for a name that is no kind.</summary>
    public Type? TypeOf(string kind) => Kinds.FirstOrDefault(k => k.Kind == kind).Type;

    /// <summary>The kind of a record of this union.</summary>
    public string KindOf(Type type) => Kinds.FirstOrDefault(k => k.Type == type).Kind
        ?? throw new InvalidOperationException($"{type.Name} is not a kind of this union (add a [JsonDerivedType] for it)");

    /// <summary>"one of "a", "b", …" for error messages.</summary>
    public string Allowed => "one of " + string.Join(", ", Names.Select(n => $"\"{n}\""));
}
