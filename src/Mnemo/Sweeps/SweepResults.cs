using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Evaluation.Mitigations;
using Mnemo.IO;

namespace Mnemo.Sweeps;

/// <summary>
/// Score of a cell's kept weights on one test slice: one length and, for tasks that bin their slices, one bin
/// (Bin = its label; Depth = the middle of a needle-depth bin, for heatmaps).
/// </summary>
public sealed record SliceScore(int SeqLen, string? Bin, double? Depth, double Accuracy, double ExactMatch, long Examples)
{
    public double Headline(string metric) => metric == "exact_match" ? ExactMatch : Accuracy;
}

/// <summary>
/// One cell of a finished sweep at its best learning rate (Zoology: the max over learning rates, chosen on the
/// validation accuracy), with the validation accuracy of every learning rate tried and those that diverged.
/// </summary>
public sealed record SweepCell(
    string CellId, IReadOnlyDictionary<string, string> Cell, string Task, string Mixer, string Headline,
    double BestLr, double ValidationAccuracy, double Score, IReadOnlyList<SliceScore> Slices,
    long Parameters, long StateFloatsPerLayer, int NumLayers, long Steps, double Seconds, string RunDir,
    IReadOnlyDictionary<double, double> ValidationByLr, IReadOnlyList<double> DivergedLrs)
{
    /// <summary>What <see cref="Score"/> is when <see cref="Headline"/> is "accuracy": the task's headline metric
    /// (token_accuracy, or e.g. MAD's macro accuracy).</summary>
    public string HeadlineMetric { get; init; } = "token_accuracy";

    /// <summary>The kept weights' scores under each evaluation variant of the sweep (none when it has none).</summary>
    public IReadOnlyList<VariantScore> Variants { get; init; } = [];

    /// <summary>The kept weights' largest state norms per layer, with the variants; null without variants.</summary>
    public CellStateNorms? StateNorms { get; init; }

    /// <summary>The value of an axis, or "" when the sweep has no such axis.</summary>
    public string this[string axis] => Cell.TryGetValue(axis, out var v) ? v : "";
}

/// <summary>A cell's score on the final slices under one evaluation variant (<see cref="EvalVariant"/>).</summary>
public sealed record VariantScore(string Name, double Score, IReadOnlyList<SliceScore> Slices);

/// <summary>
/// A cell's largest ‖S_t‖_F per layer on its validation examples (length <paramref name="ValidationSeqLen"/>) and, as
/// trained, at the longest final length (<paramref name="TraceSeqLen"/>; empty without traces); the per-position
/// traces are in <paramref name="TracesFile"/> (relative to the sweep folder; null without traces).
/// </summary>
public sealed record CellStateNorms(int ValidationSeqLen, double[] MaxAtValidation, int TraceSeqLen, int TraceExamples,
    double[] MaxAtLongest, string? TracesFile)
{
    /// <summary>The per-position traces, in the order they were recorded; none when there is no traces file.</summary>
    public IReadOnlyList<StateNormTrace> ReadTraces(string sweepDir)
    {
        string? path = TracesFile is null ? null : Path.Combine(sweepDir, TracesFile);
        if (path is null || !File.Exists(path)) return [];
        return JsonSerializer.Deserialize<List<StateNormTrace>>(File.ReadAllText(path), Read) ?? [];
    }

    static readonly JsonSerializerOptions Read = new(ConfigBinder.WriteOptions)
    {
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}

/// <summary>Reads a sweep's results file and reduces it to one <see cref="SweepCell"/> per cell.</summary>
public static class SweepResults
{
    /// <summary>Accepts a sweep folder or its results.jsonl.</summary>
    public static string ResultsPath(string folderOrFile)
    {
        string path = Directory.Exists(folderOrFile) ? Path.Combine(folderOrFile, SweepLedger.ResultsFile) : folderOrFile;
        if (!File.Exists(path))
            throw new MnemoException($"no sweep results at {path}: " +
                $"pass a sweep folder (holding {SweepLedger.ResultsFile}) or the file itself");
        return path;
    }

    public static List<SweepCell> Cells(IEnumerable<JsonObject> lines)
    {
        var cells = new List<SweepCell>();
        foreach (var group in lines.GroupBy(l => l["cell_id"]!.GetValue<string>()))
        {
            var ok = group.Where(l => l["status"]?.GetValue<string>() == "ok").ToList();
            var diverged = group.Where(l => l["status"]?.GetValue<string>() != "ok").Select(l => l["lr"]!.GetValue<double>()).Order()
                .ToList();
            if (ok.Count == 0) continue; // every learning rate diverged: listed in the report's run table only
            string headline = ok[0]["headline"]?.GetValue<string>() ?? "accuracy";
            var best = BestLearningRate.Pick(ok, headline, l => l["lr"]!.GetValue<double>(),
                l => Number(l["validation_accuracy"]), l => Number(l["validation_exact_match"]));
            var slices = Slices(best["slices"]!);
            cells.Add(new SweepCell(
                group.Key, best["cell"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()),
                best["task"]!.GetValue<string>(), best["mixer"]!.GetValue<string>(), headline,
                best["lr"]!.GetValue<double>(), Number(best["validation_accuracy"]),
                Number(best[headline]), slices,
                best["parameters"]!.GetValue<long>(), best["state_floats_per_layer"]!.GetValue<long>(), best["num_layers"]!.GetValue<int>(),
                best["steps"]!.GetValue<long>(), best["seconds"]!.GetValue<double>(), best["run_dir"]!.GetValue<string>(),
                ok.ToDictionary(l => l["lr"]!.GetValue<double>(), l => Number(l["validation_accuracy"])), diverged)
            {
                HeadlineMetric = best["headline_metric"]?.GetValue<string>() ?? "token_accuracy",
                Variants = best["variants"]?.AsArray().Select(v => new VariantScore(v!["name"]!.GetValue<string>(), Number(v[headline]),
                    Slices(v["slices"]!))).ToList() ?? [],
                StateNorms = best["state_norms"] is JsonObject n ? new CellStateNorms(n["validation_seq_len"]!.GetValue<int>(),
                    Numbers(n["max_at_validation"]), n["trace_seq_len"]!.GetValue<int>(), n["trace_examples"]!.GetValue<int>(),
                    Numbers(n["max_at_longest"]), n["traces"]?.GetValue<string>()) : null,
            });
        }
        return cells;
    }

    static List<SliceScore> Slices(JsonNode slices) => slices.AsArray().Select(s => new SliceScore(
        s!["seq_len"]!.GetValue<int>(), s["bin"]?["label"]?.GetValue<string>(),
        s["bin"]?["axis"]?.GetValue<string>() == "depth"
            ? (s["bin"]!["lo"]!.GetValue<double>() + s["bin"]!["hi"]!.GetValue<double>()) / 2
            : null,
        Number(s["accuracy"]), Number(s["exact_match"]), s["examples"]!.GetValue<long>())).ToList();

    static double[] Numbers(JsonNode? n) => n?.AsArray().Select(Number).ToArray() ?? [];

    /// <summary>A number of a result line; null (a NaN when written) reads back as NaN.</summary>
    static double Number(JsonNode? n) => n is null ? double.NaN : n.GetValue<double>();
}
