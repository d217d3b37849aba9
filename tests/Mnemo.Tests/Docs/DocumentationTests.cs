using System.Text;
using System.Text.RegularExpressions;

namespace Mnemo.Tests.Docs;

/// <summary>
/// The project documents itself: code and docs cite only files in the repository (docs/ or papers), and every link
/// into docs/ — from Markdown or from a source comment — names a file and a heading that exist.
/// </summary>
public sealed class DocumentationTests
{
    static readonly string Root = Repository.Root;

    /// <summary>Tracked text files: sources, tests, configs, scripts, CI and Markdown (build outputs excluded).</summary>
    static IEnumerable<string> TextFiles()
    {
        string[] folders = ["src", "tests", "configs", "scripts", "docs", ".ci", "build"];
        string[] extensions = [".cs", ".md", ".json", ".sh", ".targets", ".props", ""];
        var files = folders.Select(f => Path.Combine(Root, f)).Where(Directory.Exists)
            .SelectMany(f => Directory.EnumerateFiles(f, "*", SearchOption.AllDirectories))
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Where(f => extensions.Contains(Path.GetExtension(f)));
        return files.Append(Path.Combine(Root, "README.md"));
    }

    static string Relative(string path) => Path.GetRelativePath(Root, path);

    [Fact]
    public void Nothing_cites_a_design_note_outside_the_repository()
    {
        // Spelled in pieces so this file does not match itself.
        var outside = new Regex(@"\b("
            + string.Join("|", new[] { "ALGO" + "RITHMS", "EVALU" + "ATIONS", "ARCHI" + "TECTURE", "ST" + "YLE" })
            + @")\.md\b|shared/" + "design");
        var hits = TextFiles()
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => outside.IsMatch(x.line))
            .Select(x => $"{Relative(x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(hits.Count == 0, "cite docs/ or the paper instead:\n" + string.Join("\n", hits));
    }

    [Fact]
    public void Every_link_into_the_docs_resolves_to_a_file_and_heading()
    {
        var markdownLink = new Regex(@"\]\((?<target>[^)\s]+)\)");
        var sourceCitation = new Regex(@"(?<target>docs/[A-Za-z0-9_\-/]+\.md(#[A-Za-z0-9_\-]+)?)");
        var broken = new List<string>();
        foreach (var file in TextFiles())
        {
            bool markdown = file.EndsWith(".md", StringComparison.Ordinal);
            foreach (var (line, i) in File.ReadLines(file).Select((l, i) => (l, i)))
            {
                var targets = markdown
                    ? markdownLink.Matches(line).Select(m => m.Groups["target"].Value)
                        .Where(t => !t.Contains("://") && !t.StartsWith("mailto:", StringComparison.Ordinal))
                        .Select(t => (Path: t, From: Path.GetDirectoryName(file)!))
                    : sourceCitation.Matches(line).Select(m => (Path: m.Groups["target"].Value, From: Root));
                foreach (var (target, from) in targets)
                    if (Check(target, from, file) is { } problem) broken.Add($"{Relative(file)}:{i + 1}: {target}: {problem}");
            }
        }
        Assert.True(broken.Count == 0, string.Join("\n", broken));
    }

    static string? Check(string target, string from, string file)
    {
        var hash = target.IndexOf('#');
        var (path, anchor) = hash < 0 ? (target, null) : (target[..hash], target[(hash + 1)..]);
        var full = path.Length == 0 ? file : Path.GetFullPath(Path.Combine(from, path));
        if (!File.Exists(full) && !Directory.Exists(full)) return "no such file";
        if (anchor is null) return null;
        if (!full.EndsWith(".md", StringComparison.Ordinal)) return "an anchor into a file that is not Markdown";
        return Anchors(full).Contains(anchor) ? null : "no heading with this anchor";
    }

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered.</summary>
    internal static HashSet<string> Anchors(string markdownFile)
    {
        var anchors = new HashSet<string>();
        bool fenced = false;
        foreach (var line in File.ReadLines(markdownFile))
        {
            if (line.StartsWith("```", StringComparison.Ordinal)) fenced = !fenced;
            if (fenced || !line.StartsWith('#')) continue;
            var text = line.TrimStart('#').Trim();
            var slug = new StringBuilder();
            foreach (var c in text.ToLowerInvariant())
                if (char.IsLetterOrDigit(c) || c is '-' or '_') slug.Append(c);
                else if (c == ' ') slug.Append('-');
            var s = slug.ToString();
            for (int n = 1; !anchors.Add(s); n++) s = $"{slug}-{n}";
        }
        return anchors;
    }

    [Theory]
    [InlineData("## 2a. The bare memory (`mnemo probe`)", "2a-the-bare-memory-mnemo-probe")]
    [InlineData("### (d) State collapse beyond the training length (Stuffed Mamba)",
        "d-state-collapse-beyond-the-training-length-stuffed-mamba")]
    [InlineData("## N-parity and N-DMS", "n-parity-and-n-dms")]
    public void Anchors_follow_github(string heading, string anchor)
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, heading + "\n");
            Assert.Contains(anchor, Anchors(file));
        }
        finally { File.Delete(file); }
    }
}
