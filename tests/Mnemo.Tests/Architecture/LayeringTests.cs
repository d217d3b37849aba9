using System.Reflection;
using System.Text.RegularExpressions;

namespace Mnemo.Tests.Architecture;

/// <summary>
/// Dependencies flow one way (docs/architecture.md#layers): a source file under src/ may name only its own unit and
/// the units of lower layers. The scan reads each file's code (comments and string text removed) for qualified
/// names, <c>Mnemo.X.Y</c> as well as <c>X.Y</c> resolved from the file's namespace the way C# resolves it, and for
/// using directives, which are qualified names too. Which namespaces and types exist comes from the built assemblies.
/// </summary>
public sealed partial class LayeringTests
{
    /// <summary>
    /// The layers from the bottom up, numbered from 1 in docs/architecture.md#layers. A unit is a namespace with
    /// everything below it; a file may use its own unit and the units of lower layers, never those of a higher layer
    /// nor the other units of its own layer.
    /// </summary>
    static readonly string[][] Layers =
    [
        ["Mnemo"],                                                 // the root namespace alone: MnemoException
        ["Mnemo.Runtime", "Mnemo.IO"],
        ["Mnemo.Memory.Matrix", "Mnemo.Memory.Aaren", "Mnemo.Memory.Landmark", "Mnemo.Memory.Episodic", "Mnemo.Memory.Sparse"],
        ["Mnemo.Memory.Mixture", "Mnemo.Memory.Deep"],
        ["Mnemo.Layers"],
        ["Mnemo.Models"],
        ["Mnemo.Text"],
        ["Mnemo.Tasks", "Mnemo.Writing"],
        ["Mnemo.Evaluation"],
        ["Mnemo.Training"],
        ["Mnemo.Sweeps"],
        ["Mnemo.Reporting"],
        ["Mnemo.Experiments", "Mnemo.Benchmarks", "Mnemo.Tools", "Mnemo.Forecasting", "Mnemo.Classification", "Mnemo.Retrieval",
            "Mnemo.Dialog", "Mnemo.Llama", "Mnemo.Interop"],
        ["Mnemo.Cli"],
    ];

    /// <summary>Top-level type names per Mnemo namespace of the library and the CLI; parent namespaces included.</summary>
    static readonly Dictionary<string, HashSet<string>> TypesByNamespace = KnownTypes(
        typeof(MnemoException).Assembly, typeof(Mnemo.Cli.Program).Assembly, typeof(Mnemo.Llama.LlamaGenerator).Assembly);

    [Fact]
    public void No_source_file_depends_on_a_higher_layer()
    {
        var violations = SourceFiles().SelectMany(f => Violations(File.ReadAllText(f), Path.GetRelativePath(Repository.Root, f))).ToList();
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    /// <summary>The scan reads past every literal of the real sources: none leaves a quote behind in the code.</summary>
    [Fact]
    public void Every_literal_of_the_sources_is_read_to_its_end()
    {
        var unread = SourceFiles().Where(f => CodeOnly(File.ReadAllText(f)).IndexOfAny(['"', '\'']) >= 0).ToList();
        Assert.True(unread.Count == 0, string.Join("\n", unread));
    }

    static List<string> SourceFiles()
    {
        string src = Path.Combine(Repository.Root, "src");
        var files = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .ToList();
        Assert.True(files.Count > 100, $"found only {files.Count} source files under {src}");
        return files;
    }

    [Fact]
    public void The_docs_list_the_same_layers()
    {
        var doc = File.ReadAllLines(Path.Combine(Repository.Root, "docs", "architecture.md"))
            .SkipWhile(l => l != "## Layers").Skip(1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal))
            .Select(l => DocLayer().Match(l)).Where(m => m.Success)
            .Select(m => string.Join(", ", DocUnit().Matches(m.Groups[1].Value.Split(':', '(')[0]).Select(u => u.Groups[1].Value)))
            .ToList();
        Assert.Equal(Layers.Select(l => string.Join(", ", l)), doc);
    }

    /// <summary>Every unit exists, and every namespace with types has a layer. The second also covers the names a
    /// file uses unqualified from an enclosing namespace: those are in its own unit, or in the root at the bottom.</summary>
    [Fact]
    public void Every_unit_exists_and_every_namespace_has_a_layer()
    {
        var missing = Layers.SelectMany(l => l).Where(u => !TypesByNamespace.ContainsKey(u)).ToList();
        Assert.True(missing.Count == 0, $"no such namespace: {string.Join(", ", missing)}");
        var placeless = TypesByNamespace.Where(kv => kv.Value.Count > 0 && UnitOf(kv.Key) is null).Select(kv => kv.Key).ToList();
        Assert.True(placeless.Count == 0, $"in no layer: {string.Join(", ", placeless)}");
    }

    /// <summary>The rule itself on small sources: it must catch each kind of reference, and only references.</summary>
    [Theory]
    [InlineData("using Mnemo.Layers;\nnamespace Mnemo.Memory.Matrix;\nclass A { }", "uses Mnemo.Layers")]
    [InlineData("namespace Mnemo.Layers;\nclass A { Models.LanguageModel? m; }", "uses Mnemo.Models")]
    [InlineData("namespace Mnemo.Tasks;\nclass A { Mnemo.Evaluation.RecallAccuracy? r; }", "uses Mnemo.Evaluation")]
    [InlineData("namespace Mnemo.Memory.Matrix;\nclass A { string s = $\"{Mnemo.Models.Readout.NextToken}\"; }", "uses Mnemo.Models")]
    [InlineData("using static Mnemo.Experiments.MqarDemo;\nnamespace Mnemo.Benchmarks;\nclass A { }", "uses Mnemo.Experiments")]
    [InlineData("namespace Mnemo.Gadgets;\nclass A { }", "Mnemo.Gadgets is in no layer")]
    [InlineData("using Mnemo.Memory.Matrix;\nusing Mnemo.Models;\nnamespace Mnemo.Training;\nclass A { Layers.ModelConfig? c; }", null)]
    [InlineData("namespace Mnemo.Tasks.Mad;\nclass A { Readout R() => Models.Readout.NextToken; TaskBatch? b; }", null)]
    [InlineData("namespace Mnemo.Memory.Matrix;\n// Mnemo.Layers.Mamba2 calls this\n/* Models.LanguageModel */ class A { }", null)]
    [InlineData("namespace Mnemo.Memory.Matrix;\nclass A { string s = \"Models.LanguageModel\" + $\"{1} Mnemo.Tasks.ITask\"; }", null)]
    [InlineData("namespace Mnemo.Layers;\nclass A { char q = '\"'; string s = @\"Mnemo.Models \"\" Mnemo.Tasks\"; }", null)]
    [InlineData("namespace Mnemo.Layers;\nclass A { int Tasks; void F() => Tasks.ToString(); }", null)]
    public void The_rule_finds_each_kind_of_reference(string source, string? expected)
    {
        var found = Violations(source, "A.cs").ToList();
        if (expected is null) Assert.Empty(found);
        else Assert.Contains(found, v => v.Contains(expected, StringComparison.Ordinal));
    }

    /// <summary>"file:line: what is wrong" for every reference from the file's namespace to a unit it may not use.</summary>
    internal static IEnumerable<string> Violations(string source, string file)
    {
        string code = CodeOnly(source);
        var declared = NamespaceDeclaration().Match(code);
        if (!declared.Success)
        {
            yield return $"{file}: declares no namespace";
            yield break;
        }
        string ns = declared.Groups[1].Value;
        if (UnitOf(ns) is not { } home)
        {
            yield return $"{file}: namespace {ns} is in no layer (add it to LayeringTests.Layers and docs/architecture.md#layers)";
            yield break;
        }
        foreach (var (target, index) in References(code, ns))
        {
            if (UnitOf(target) is not { } used)
                yield return $"{file}:{Line(code, index)}: uses {target}, which is in no layer";
            else if (used.Unit != home.Unit && used.Layer >= home.Layer)
                yield return $"{file}:{Line(code, index)}: {ns} (layer {home.Layer + 1}) uses {target} (layer {used.Layer + 1}" +
                    (used.Layer == home.Layer ? ", a different unit of the same layer)" : ")");
        }
    }

    /// <summary>The unit a namespace belongs to and its layer: the longest unit it equals or lies under. The root
    /// namespace is a unit of its own, not a parent of the others.</summary>
    static (string Unit, int Layer)? UnitOf(string ns)
    {
        (string Unit, int Layer)? best = null;
        for (int layer = 0; layer < Layers.Length; layer++)
            foreach (var unit in Layers[layer])
                if ((ns == unit || (unit != "Mnemo" && ns.StartsWith(unit + ".", StringComparison.Ordinal)))
                    && (best is null || unit.Length > best.Value.Unit.Length))
                    best = (unit, layer);
        return best;
    }

    /// <summary>
    /// The namespaces the code names, with where: Mnemo.X… written out, or X… resolved as C# does, against the file's
    /// namespace and each of its parents, innermost first. A relative name counts only when it goes on to name a type
    /// of that namespace, so a member called Tasks or Models is not mistaken for a namespace.
    /// </summary>
    static IEnumerable<(string Namespace, int Index)> References(string code, string ns)
    {
        foreach (Match m in DottedName().Matches(code))
        {
            var parts = m.Value.Split('.');
            IEnumerable<string> containers = parts[0] == "Mnemo" ? [""] : Containers(ns);
            foreach (var container in containers)
            {
                string candidate = container.Length == 0 ? parts[0] : container + "." + parts[0];
                if (!TypesByNamespace.ContainsKey(candidate)) continue;
                int n = 1;
                while (n < parts.Length && TypesByNamespace.ContainsKey(candidate + "." + parts[n])) candidate += "." + parts[n++];
                bool namesAType = n < parts.Length && TypesByNamespace[candidate].Contains(parts[n]);
                if (parts[0] == "Mnemo" || namesAType) yield return (candidate, m.Index);
                break;
            }
        }
    }

    /// <summary>Mnemo.A.B → Mnemo.A.B, Mnemo.A, Mnemo.</summary>
    static IEnumerable<string> Containers(string ns)
    {
        for (var c = ns; c.Length > 0; c = c.Contains('.') ? c[..c.LastIndexOf('.')] : "") yield return c;
    }

    static int Line(string code, int index) => code.AsSpan(0, index).Count('\n') + 1;

    static Dictionary<string, HashSet<string>> KnownTypes(params Assembly[] assemblies)
    {
        var types = new Dictionary<string, HashSet<string>>();
        foreach (var t in assemblies.SelectMany(a => a.GetTypes()))
        {
            bool ours = t.Namespace is { } n && (n == "Mnemo" || n.StartsWith("Mnemo.", StringComparison.Ordinal));
            if (!ours || t.DeclaringType is not null || t.Name.Contains('<')) continue;     // top-level, not generated
            foreach (var parent in Containers(t.Namespace!)) types.TryAdd(parent, []);
            types[t.Namespace!].Add(t.Name.Split('`')[0]);
        }
        return types;
    }

    // ---- C# source to code: comments and the text of literals become spaces; interpolation holes stay code. ----

    /// <summary>The source with comments and the text of string and character literals blanked (line breaks kept, so
    /// an index still has its line); the holes of interpolated strings stay, since they are code.</summary>
    internal static string CodeOnly(string source)
    {
        var code = source.ToCharArray();
        int i = 0;
        Code(source, code, ref i, inHole: false);
        return new string(code);
    }

    /// <summary>Scans code from <paramref name="i"/>; in an interpolation hole, stops at the brace that closes it.</summary>
    static void Code(string s, char[] code, ref int i, bool inHole)
    {
        int depth = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '/' && At(s, i + 1, '/')) Skip(code, ref i, End(s.IndexOf('\n', i), s.Length));
            else if (c == '/' && At(s, i + 1, '*'))
                Skip(code, ref i, End(s.IndexOf("*/", i + 2, StringComparison.Ordinal), s.Length - 2) + 2);
            else if (c == '\'') CharLiteral(s, code, ref i);
            else if (StringAt(s, i) is { } literal) StringLiteral(s, code, ref i, literal);
            else if (c == '}' && inHole && depth == 0) return;
            else
            {
                depth += c == '{' ? 1 : c == '}' ? -1 : 0;
                i++;
            }
        }
    }

    /// <summary>Where a comment ends: what IndexOf found, or the end of the source when it found nothing.</summary>
    static int End(int found, int fallback) => found < 0 ? fallback : found;

    static bool At(string s, int i, char c) => i < s.Length && s[i] == c;

    /// <summary>Blanks a comment and moves past it.</summary>
    static void Skip(char[] code, ref int i, int end)
    {
        Blank(code, i, end);
        i = end;
    }

    static void Blank(char[] code, int from, int to)
    {
        for (int j = from; j < Math.Min(to, code.Length); j++)
            if (code[j] != '\n') code[j] = ' ';
    }

    static void CharLiteral(string s, char[] code, ref int i)
    {
        int start = i++;
        while (i < s.Length && s[i] != '\'') i += s[i] == '\\' ? 2 : 1;
        Blank(code, start, ++i);
    }

    /// <summary>A string literal's opening: its $ count (interpolation), @ (verbatim), the quotes that open it (3 or
    /// more: raw) and where its text starts.</summary>
    readonly record struct Opening(int Dollars, bool Verbatim, int Quotes, int Text);

    static Opening? StringAt(string s, int i)
    {
        int j = i, dollars = 0;
        bool verbatim = false;
        for (; j < s.Length && s[j] is '$' or '@'; j++)
            if (s[j] == '$') dollars++;
            else verbatim = true;
        if (!At(s, j, '"') || (i > 0 && (char.IsLetterOrDigit(s[i - 1]) || s[i - 1] == '_'))) return null;
        int quotes = 0;
        while (At(s, j + quotes, '"')) quotes++;
        if (quotes < 3) quotes = 1;                                          // "" is an empty literal, not a raw one
        return new Opening(dollars, verbatim, quotes, j + quotes);
    }

    static void StringLiteral(string s, char[] code, ref int i, Opening o)
    {
        int text = i;
        string close = new('"', o.Quotes);
        for (i = o.Text; i < s.Length;)
        {
            if (o.Quotes == 1 && !o.Verbatim && s[i] == '\\') i += 2;
            else if (o.Quotes == 1 && o.Verbatim && s[i] == '"' && At(s, i + 1, '"')) i += 2;
            else if (string.CompareOrdinal(s, i, close, 0, close.Length) == 0) { i += close.Length; break; }
            else if (o.Dollars > 0 && s[i] == '{')
            {
                int braces = 0;
                while (At(s, i + braces, '{')) braces++;
                int opens = o.Quotes == 1 ? 1 : o.Dollars;                     // raw: $$ opens a hole with {{
                if ((o.Quotes == 1 && braces >= 2) || braces < opens) { i += o.Quotes == 1 ? 2 : braces; continue; }
                i += braces;
                Blank(code, text, i - opens);
                Code(s, code, ref i, inHole: true);
                i += opens;
                text = i - opens;
            }
            else i++;
        }
        Blank(code, text, i);
    }

    /// <summary>A numbered line of the docs' layer list; its units are the backticked names before any ':' or '('.</summary>
    [GeneratedRegex(@"^\d+\.\s+(.*)$")]
    private static partial Regex DocLayer();

    [GeneratedRegex(@"`([\w.]+)`")]
    private static partial Regex DocUnit();

    [GeneratedRegex(@"^\s*namespace\s+([\w.]+)", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    /// <summary>A dotted name not preceded by a dot or an identifier character (so a.B.C is not read as B.C).</summary>
    [GeneratedRegex(@"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")]
    private static partial Regex DottedName();
}
