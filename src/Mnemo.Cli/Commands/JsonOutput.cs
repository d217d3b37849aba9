using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.IO;

namespace Mnemo.Cli.Commands;

/// <summary>The --out option of the commands that can also write their scores as JSON, and the writing.</summary>
static class JsonOutput
{
    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Option<string?> Create() => new("--out", "-o") { Description = "Write the scores as JSON to this file" };

    /// <summary>Writes <paramref name="json"/> (indented) through a temp file and says where.</summary>
    public static void Write(string file, JsonObject json)
    {
        AtomicFile.WriteAllText(file, json.ToJsonString(Indented));
        Console.WriteLine($"wrote {file}");
    }
}
