using System.Globalization;
using System.Net;
using System.Text;
using Mnemo.IO;
using Mnemo.Runtime;
using Mnemo.Sweeps;

namespace Mnemo.Reporting;

/// <summary>
/// Turns a finished (or partly finished) sweep into a report folder: report.md (Markdown tables), PNG plots, and
/// index.html, which embeds the plots and tables so it opens offline from anywhere. Nothing is re-run.
/// <list type="bullet">
/// <item>a pivot table: the first axis down, the other axes across, each cell's score at its best learning rate;</item>
/// <item>accuracy against context length per cell (when the final evaluation has several lengths);</item>
/// <item>accuracy against recurrent state size per model (Zoology's / Based's plot), when sizes vary;</item>
/// <item>depth × length heatmaps for needle tasks (slices that carry a depth);</item>
/// <item>training-loss curves of the kept runs, and every run's validation accuracy per learning rate.</item>
/// </list>
/// </summary>
public static class SweepReport
{
    static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>Writes the report; returns the path of index.html.</summary>
    public static string Write(string resultsFolderOrFile, string? outDir = null)
    {
        string resultsPath = SweepResults.ResultsPath(resultsFolderOrFile);
        string sweepDir = Path.GetDirectoryName(Path.GetFullPath(resultsPath))!;
        outDir ??= Path.Combine(sweepDir, "report");
        Directory.CreateDirectory(outDir);
        var lines = SweepLedger.ReadResults(resultsPath);
        if (lines.Count == 0) throw new MnemoException($"{resultsPath} holds no finished runs yet");
        var sweep = SweepOutline.Read(Path.Combine(sweepDir, SweepRunner.ConfigFile));
        var cells = sweep?.InGridOrder(SweepResults.Cells(lines)) ?? SweepResults.Cells(lines);
        string[] axes = sweep?.Axes ?? cells.SelectMany(c => c.Cell.Keys).Distinct().ToArray();
        string title = sweep?.Name ?? Path.GetFileName(sweepDir);

        var md = new StringBuilder();
        var figures = new List<(string File, string Caption)>();
        md.AppendLine($"# Sweep report: {title}\n");
        if (!string.IsNullOrEmpty(sweep?.Description)) md.AppendLine(sweep.Description + "\n");
        int planned = sweep?.Runs ?? lines.Count;
        md.AppendLine($"{lines.Count} of {planned} runs finished ({lines.Count(l => l["status"]!.GetValue<string>() != "ok")} diverged); " +
            $"{cells.Count} cells, each reported at its best learning rate by validation accuracy. " +
            $"Score: {string.Join("; ", cells.Select(c => $"{c.Task} = {Describe(c)}").Distinct())}.\n");

        foreach (var note in lines.Select(l => l["data_note"]?.GetValue<string>()).OfType<string>().Distinct())
            md.AppendLine($"**Data:** {note} (in {lines.Count(l => l["data_note"]?.GetValue<string>() == note)} runs).\n");
        var seeds = SeedSummary.Of(lines) is { } groups ? sweep?.InGridOrder(groups) ?? groups : null;
        if (seeds is not null) md.AppendLine(SeedTable(seeds, axes.Where(a => a != SeedSummary.Axis).ToArray()));
        md.AppendLine(Pivot(cells, axes));
        md.AppendLine(CellTable(cells, axes));
        md.AppendLine(BinTable(cells, axes));
        md.AppendLine(VariantTable(cells, axes));
        md.AppendLine(RunTable(lines, axes));

        string Fig(string file, string caption, Action<string> draw)
        {
            draw(Path.Combine(outDir, file));
            figures.Add((file, caption));
            return file;
        }
        if (cells.SelectMany(c => c.Slices.Select(s => s.SeqLen)).Distinct().Count() > 1)
            Fig("length.png", "Score against context length, one line per cell (best learning rate).", p => SweepPlots.Length(cells, p));
        if (cells.Select(c => c.StateFloatsPerLayer).Distinct().Count() > 1)
            Fig("state-size.png", "Score against recurrent state per layer (floats; attention: " +
                "its KV cache at the longest test length), one line per model.", p => SweepPlots.StateSize(cells, SeriesAxis(axes), p));
        foreach (var (cell, i) in cells.Where(c => c.Slices.Any(s => s.Depth is not null)).Select((c, i) => (c, i)))
            Fig($"depth-{i}.png", $"Needle depth × context length: {cell.CellId}.", p => SweepPlots.DepthHeatmap(cell, p));
        var varied = cells.Where(c => c.Variants.Count > 0 && c.StateNorms is not null).ToList();
        if (varied.Count > 0)
        {
            int trainLength = varied[0].StateNorms!.ValidationSeqLen;
            Fig("variants.png", "Score against context length under each evaluation variant, one line pattern per cell.",
                p => VariantPlots.Accuracy(varied, c => c.CellId, trainLength, p));
            var traces = varied.Select(c => (c.CellId, c.StateNorms!.ReadTraces(sweepDir))).Where(t => t.Item2.Count > 0).ToList();
            if (traces.Count > 0)
                Fig("state-norms.png", $"State norm against position at length {varied[0].StateNorms!.TraceSeqLen}: mean over examples " +
                    "of the largest head's ‖S_t‖_F, per cell and layer, as trained and under each variant that runs the step form.",
                    p => VariantPlots.Norms(traces, trainLength, p));
        }
        if (seeds is not null)
        {
            var accuracy = seeds.ToDictionary(g => g.GroupId, g => g.Runs.Select(r => r.RunDir is null ? []
                : ValidationCurve(Path.Combine(sweepDir, r.RunDir))).ToList());
            if (accuracy.Values.Any(c => c.Any(r => r.Count > 0)))
                Fig("seed-curves.png",
                    "Validation accuracy against training step at each group's learning rate: the median over seeds (line) and the " +
                    "range (band); a run that stopped at the target keeps its last score.",
                    p => SweepPlots.SeedCurves(seeds, accuracy, p));
        }
        var curves = cells.ToDictionary(c => c.CellId, c => LossCurve(Path.Combine(sweepDir, c.RunDir)));
        if (curves.Values.Any(c => c.Count > 0))
            Fig("loss.png", "Training loss of each cell's kept run.", p => SweepPlots.Loss(curves, p));
        foreach (var (file, caption) in figures) md.AppendLine($"![{caption}]({file})\n");

        AtomicFile.WriteAllText(Path.Combine(outDir, "report.md"), md.ToString());
        string html = Html(title, md.ToString(), outDir);
        string index = Path.Combine(outDir, "index.html");
        AtomicFile.WriteAllText(index, html);
        return index;
    }

    static string Describe(SweepCell c) => c.Headline == "exact_match" ? "exact match (every scored token of an example right)"
        : c.HeadlineMetric == "token_accuracy" ? "accuracy (per scored token, averaged per example)" : c.HeadlineMetric.Replace('_', ' ');

    /// <summary>
    /// What the report needs of the sweep's config: name, description, axis names and the number of runs. Read as
    /// plain JSON, not bound and validated: a finished sweep must re-report on a machine where its base config would
    /// not validate (a corpus that is not set up there, say).
    /// </summary>
    sealed record SweepOutline(string Name, string Description, string[] Axes, string[][] Values, int Runs)
    {
        /// <summary>Cells in the order of the grid (first axis slowest), not the order workers finished them.</summary>
        public List<SweepCell> InGridOrder(List<SweepCell> cells) => cells.OrderBy(c => GridKey(a => c[a])).ToList();

        /// <summary>Seed groups in the order of the grid's other axes.</summary>
        public List<SeedSummary> InGridOrder(List<SeedSummary> groups) =>
            groups.OrderBy(g => GridKey(a => g.Cell.TryGetValue(a, out var v) ? v : "")).ToList();

        long GridKey(Func<string, string> valueOf) =>
            Axes.Select((a, i) => Array.IndexOf(Values[i], valueOf(a))).Aggregate(0L, (key, index) => key * 1000 + index + 1);

        public static SweepOutline? Read(string path)
        {
            if (!File.Exists(path)) return null;
            try
            {
                var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
                var axes = root["axes"]?.AsArray() ?? [];
                int runs = axes.Aggregate(1, (n, a) => n * (a!["values"]?.AsArray().Count ?? 1)) * (root["learning_rates"]?.AsArray().Count
                    ?? 1);
                return new SweepOutline(root["name"]?.GetValue<string>() ?? Path.GetFileName(Path.GetDirectoryName(path)!),
                    root["description"]?.GetValue<string>() ?? "", axes.Select(a => a!["name"]!.GetValue<string>()).ToArray(),
                    axes.Select(a => (a!["values"]?.AsArray() ?? []).Select(v => v!["name"]!.GetValue<string>()).ToArray()).ToArray(),
                    runs);
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
            {
                return null; // an unreadable config only costs the report its title and axis order
            }
        }
    }

    /// <summary>The axis whose values are the plots' series: "model" if the sweep has one, else the first.</summary>
    static string? SeriesAxis(string[] axes) => axes.Contains("model") ? "model" : axes.FirstOrDefault();

    static string P(double d) => double.IsNaN(d) ? "–" : (100 * d).ToString("F1", C) + "%";

    /// <summary>The first axis down, the remaining axes across (Zoology's tables: model × d_model).</summary>
    static string Pivot(List<SweepCell> cells, string[] axes)
    {
        if (axes.Length < 2) return "";
        string rowAxis = axes[0];
        var cols = cells.Select(c => string.Join(", ", axes.Skip(1).Select(a => $"{a}={c[a]}"))).Distinct().ToList();
        var sb = new StringBuilder($"## Score at the best learning rate\n\n| {rowAxis} | {string.Join(" | ", cols)} " +
            $"|\n|---|{string.Concat(cols.Select(_ => "---|"))}\n");
        foreach (var row in cells.Select(c => c[rowAxis]).Distinct())
        {
            sb.Append($"| {row} |");
            foreach (var col in cols)
            {
                var cell = cells.FirstOrDefault(c => c[rowAxis] == row && string.Join(", ",
                    axes.Skip(1).Select(a => $"{a}={c[a]}")) == col);
                sb.Append($" {(cell is null ? "–" : P(cell.Score))} |");
            }
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>Each group over its seeds at the learning rate with the best median: median, range, every seed's score,
    /// and the steps of the runs that reached the target (early stop), the sweep's claim per group.</summary>
    static string SeedTable(List<SeedSummary> groups, string[] axes)
    {
        string Steps(SeedSummary g) => g.StepsToTarget.Count == 0 ? "none"
            : $"{g.StepsToTarget.Count}/{g.Runs.Count}: median " +
                $"{Statistics.Median(g.StepsToTarget.Select(s => (double)s)).ToString("F0", C)} ({g.StepsToTarget.Min()}" +
                $"–{g.StepsToTarget.Max()})";
        var lrs = groups.SelectMany(g => g.MedianByLr.Keys).Distinct().Order().ToList();
        var sb = new StringBuilder("## Over seeds: median and range at the learning rate with the best median\n\n");
        sb.AppendLine($"| {string.Join(" | ", axes)} | lr | seeds | median | range | per seed | reached target: " +
            $"steps | {string.Join(" | ", lrs.Select(l => $"median at lr {l.ToString("G3", C)}"))} |");
        sb.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", axes.Length + 6 + lrs.Count)));
        foreach (var g in groups)
        {
            string perSeed = string.Join(", ", g.Runs.Select(r => r.Diverged ? $"{r.Seed}: diverged @ {r.Steps}"
                : $"{r.Seed}: {P(r.Score)}"));
            sb.AppendLine($"| {string.Join(" | ", axes.Select(a => g.Cell.TryGetValue(a, out var v) ? v : ""))} | " +
                $"{g.BestLr.ToString("G3", C)} | {g.Runs.Count} | {P(g.Median)} | {P(g.Min)}–{P(g.Max)} | {perSeed} | {Steps(g)} | " +
                $"{string.Join(" | ", lrs.Select(l => g.MedianByLr.TryGetValue(l, out var m) ? P(m) : "–"))} |");
        }
        return sb.ToString();
    }

    /// <summary>The validation (test-set) accuracy a run logged at each evaluation, by step.</summary>
    static List<(double Step, double Accuracy)> ValidationCurve(string runDir)
    {
        string path = Path.Combine(runDir, Training.Trainer.MetricsFile);
        if (!File.Exists(path)) return [];
        return File.ReadLines(path).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!)
            .Where(n => n["test_accuracy"] is not null)
            .Select(n => (n["step"]!.GetValue<double>(), n["test_accuracy"]!.GetValue<double>())).ToList();
    }

    static string CellTable(List<SweepCell> cells, string[] axes)
    {
        var lengths = cells.SelectMany(c => c.Slices.Select(s => s.SeqLen)).Distinct().Order().ToList();
        var sb = new StringBuilder("## Cells\n\n");
        sb.AppendLine($"| {string.Join(" | ", axes)} | task | best lr | validation | score | " +
            $"{string.Join(" | ", lengths.Select(l => $"L={l}"))} | params | state floats/layer | steps | seconds |");
        sb.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", axes.Length + 4 + lengths.Count + 4)));
        foreach (var c in cells)
        {
            var perLength = lengths.Select(l => PooledAt(c.Slices, l, c.Headline));
            sb.AppendLine($"| {string.Join(" | ", axes.Select(a => c[a]))} | {c.Task} | {c.BestLr.ToString("G3", C)} | " +
                $"{P(c.ValidationAccuracy)} | {P(c.Score)} | {string.Join(" | ", perLength)} | {c.Parameters.ToString("N0", C)} | " +
                $"{c.StateFloatsPerLayer.ToString("N0", C)} | {c.Steps} | {c.Seconds.ToString("F0", C)} |");
        }
        return sb.ToString();
    }

    /// <summary>For tasks that bin their slices (depth, distance, set order): one column per (length, bin).</summary>
    static string BinTable(List<SweepCell> cells, string[] axes)
    {
        var binned = cells.Where(c => c.Slices.Any(s => s.Bin is not null)).ToList();
        if (binned.Count == 0) return "";
        var columns = binned.SelectMany(c => c.Slices.Select(s => (s.SeqLen, s.Bin))).Distinct().OrderBy(k => k.SeqLen).ToList();
        // A bin label is table text: a '|' in it would split the cell.
        var sb = new StringBuilder("## Score per bin\n\n");
        sb.AppendLine($"| {string.Join(" | ", axes)} | " +
            $"{string.Join(" | ", columns.Select(k => $"L={k.SeqLen} {k.Bin?.Replace('|', '/')}"))} |");
        sb.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", axes.Length + columns.Count)));
        foreach (var c in binned)
            sb.AppendLine($"| {string.Join(" | ", axes.Select(a => c[a]))} | {string.Join(" | ", columns.Select(k =>
                c.Slices.FirstOrDefault(s => s.SeqLen == k.SeqLen && s.Bin == k.Bin) is { } s ? P(s.Headline(c.Headline)) : "–"))} |");
        return sb.ToString();
    }

    /// <summary>For sweeps with evaluation variants: each cell's score per length under each variant, and the largest
    /// state norm per layer on the validation examples and at the longest length.</summary>
    static string VariantTable(List<SweepCell> cells, string[] axes)
    {
        var varied = cells.Where(c => c.Variants.Count > 0).ToList();
        if (varied.Count == 0) return "";
        var lengths = varied.SelectMany(c => c.Variants.SelectMany(v => v.Slices.Select(s => s.SeqLen))).Distinct().Order().ToList();
        var sb = new StringBuilder("## Score per evaluation variant\n\n");
        sb.AppendLine($"| {string.Join(" | ", axes)} | variant | {string.Join(" | ", lengths.Select(l => $"L={l}"))} |");
        sb.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", axes.Length + 1 + lengths.Count)));
        foreach (var c in varied)
            foreach (var v in c.Variants)
                sb.AppendLine($"| {string.Join(" | ", axes.Select(a => c[a]))} | {v.Name.Replace('|', '/')} | " +
                    $"{string.Join(" | ", lengths.Select(l => PooledAt(v.Slices, l, c.Headline)))} |");
        var normed = varied.Where(c => c.StateNorms is not null).ToList();
        if (normed.Count == 0) return sb.ToString();
        sb.AppendLine("\n## Largest state norm per layer\n");
        sb.AppendLine($"| {string.Join(" | ", axes)} | on validation (L={normed[0].StateNorms!.ValidationSeqLen}) | as trained at " +
            $"L={normed[0].StateNorms!.TraceSeqLen} |");
        sb.AppendLine("|" + string.Concat(Enumerable.Repeat("---|", axes.Length + 2)));
        static string G(double[] xs) => xs.Length == 0 ? "–" : string.Join(", ", xs.Select(x => x.ToString("G3", C)));
        foreach (var c in normed)
            sb.AppendLine($"| {string.Join(" | ", axes.Select(a => c[a]))} | {G(c.StateNorms!.MaxAtValidation)} | " +
                $"{G(c.StateNorms.MaxAtLongest)} |");
        return sb.ToString();
    }

    /// <summary>The score at one length, its slices (e.g. depth bins) pooled by examples; "–" when none.</summary>
    static string PooledAt(IReadOnlyList<SliceScore> slices, int length, string headline)
    {
        var s = slices.Where(x => x.SeqLen == length).ToList();
        return s.Count == 0 ? "–" : P(s.Sum(x => x.Headline(headline) * x.Examples) / s.Sum(x => x.Examples));
    }

    static string RunTable(List<System.Text.Json.Nodes.JsonObject> lines, string[] axes)
    {
        var lrs = lines.Select(l => l["lr"]!.GetValue<double>()).Distinct().Order().ToList();
        var sb = new StringBuilder("## Validation accuracy per learning rate\n\n");
        sb.AppendLine($"| cell | {string.Join(" | ", lrs.Select(l => $"lr {l.ToString("G3", C)}"))} |");
        sb.AppendLine("|---|" + string.Concat(lrs.Select(_ => "---|")));
        foreach (var g in lines.GroupBy(l => l["cell_id"]!.GetValue<string>()))
            sb.AppendLine($"| {g.Key} | {string.Join(" | ", lrs.Select(lr =>
            {
                var r = g.FirstOrDefault(l => l["lr"]!.GetValue<double>() == lr);
                return r is null ? "–" : r["status"]!.GetValue<string>() == "ok" ? P(r["validation_accuracy"]!.GetValue<double>())
                    : $"diverged @ {r["diverged_at_step"]}";
            }))} |");
        return sb.ToString();
    }

    static List<(double Step, double Loss)> LossCurve(string runDir) =>
        File.Exists(Path.Combine(runDir, Training.Trainer.MetricsFile)) ? Training.Trainer.LossCurve(runDir) : [];

    /// <summary>
    /// A self-contained page: the Markdown rendered by a small converter for the subset report.md uses (headings,
    /// paragraphs, pipe tables, images), images inlined as data URIs so the page needs no network and no folder.
    /// </summary>
    static string Html(string title, string markdown, string outDir)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"<!doctype html><html><head><meta charset=\"utf-8\"><title>{WebUtility.HtmlEncode(title)}</title>");
        sb.AppendLine("<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 " +
            "1em}table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;padding:3px " +
            "8px;text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%;display:block;margin:1em " +
            "0}</style></head><body>");
        var rows = new List<string[]>();
        void FlushTable()
        {
            if (rows.Count == 0) return;
            sb.AppendLine("<table><tr>" + string.Concat(rows[0].Select(h => $"<th>{WebUtility.HtmlEncode(h)}</th>")) + "</tr>");
            foreach (var r in rows.Skip(2))
                sb.AppendLine("<tr>" + string.Concat(r.Select(d => $"<td>{WebUtility.HtmlEncode(d)}</td>")) + "</tr>");
            sb.AppendLine("</table>");
            rows.Clear();
        }
        foreach (string raw in markdown.Split('\n'))
        {
            string line = raw.TrimEnd();
            if (line.StartsWith('|')) { rows.Add(line.Trim('|').Split('|').Select(c => c.Trim()).ToArray()); continue; }
            FlushTable();
            if (line.Length == 0) continue;
            if (line.StartsWith("## ")) sb.AppendLine($"<h2>{WebUtility.HtmlEncode(line[3..])}</h2>");
            else if (line.StartsWith("# ")) sb.AppendLine($"<h1>{WebUtility.HtmlEncode(line[2..])}</h1>");
            else if (line.StartsWith("![") && line.IndexOf("](", StringComparison.Ordinal) is int mid and > 0)
            {
                string caption = line[2..mid], file = line[(mid + 2)..^1];
                string data = Convert.ToBase64String(File.ReadAllBytes(Path.Combine(outDir, file)));
                sb.AppendLine($"<figure><img alt=\"{WebUtility.HtmlEncode(caption)}\" " +
                    $"src=\"data:image/png;base64,{data}\"><figcaption>{WebUtility.HtmlEncode(caption)}</figcaption></figure>");
            }
            else sb.AppendLine($"<p>{WebUtility.HtmlEncode(line)}</p>");
        }
        FlushTable();
        sb.AppendLine("</body></html>");
        return sb.ToString();
    }
}
