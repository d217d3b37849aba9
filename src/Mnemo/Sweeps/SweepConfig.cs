using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.Evaluation.Mitigations;
using Mnemo.IO;
using Mnemo.Runtime;
using Mnemo.Training;

namespace Mnemo.Sweeps;

/// <summary>One named value of an axis: the overrides ("model.d_model=64") it applies to the base config.</summary>
public sealed record SweepValue : IValidatedConfig
{
    [Help("the value's name in run ids, tables and plots (letters, digits, '.', '_' and '-')")] public string Name { get; init; } = "";
    [Help("overrides applied to the base run config, each FIELD=VALUE as with --set")] public string[] Set { get; init; } = [];
    [Help("overrides added, for this value's runs, to the sweep's final_eval (e.g. the longer test slices of the task this " +
        "value selects); any here make the final evaluation run")]
    public string[] FinalEval { get; init; } = [];

    public IEnumerable<(string, string)> Validate()
    {
        if (!SweepConfig.IsSafeName(Name))
            yield return ("name", $"\"{Name}\" must be non-empty and use only letters, digits, '.', '_' and '-'");
    }
}

/// <summary>One dimension of the grid, e.g. "model" with values attention, gla, … or "d_model" with 32, 64, ….</summary>
public sealed record SweepAxis : IValidatedConfig
{
    [Help("the axis name (a column of the results); \"model\" is the series of the report's plots")] public string Name { get; init; } = "";
    [Help("the axis' values")] public SweepValue[] Values { get; init; } = [];

    public IEnumerable<(string, string)> Validate()
    {
        if (!SweepConfig.IsSafeName(Name))
            yield return ("name", $"\"{Name}\" must be non-empty and use only letters, digits, '.', '_' and '-'");
        if (Values.Length == 0) yield return ("values", "needs at least one value");
        foreach (var dup in Values.GroupBy(v => v.Name).Where(g => g.Count() > 1))
            yield return ("values", $"the value name \"{dup.Key}\" appears {dup.Count()} times");
    }
}

/// <summary>
/// A sweep: every combination of the axes' values, each trained at every learning rate, from one base run config.
/// Zoology's protocol: a cell (one combination) is reported at its best learning rate, chosen on the run's own test
/// slices (its validation set). <see cref="FinalEval"/> can then score the kept weights on other slices (longer
/// lengths, other depths), so extrapolation lengths never influence a choice or an early stop.
/// </summary>
public sealed record SweepConfig : IValidatedConfig
{
    [Help("sweep name: the default output folder is runs/sweeps/NAME")] public string Name { get; init; } = "sweep";
    [Help("free-form description, shown in the report")] public string Description { get; init; } = "";
    [Help("the run config every run starts from (as in a `mnemo train` config file)")] public RunConfig Base { get; init; } = new();
    [Help("the grid: runs are the cartesian product of the axes' values")] public SweepAxis[] Axes { get; init; } = [];
    [Help("learning rates every cell is trained at; the best is reported")] public double[] LearningRates { get; init; } = [1e-3, 3e-3];
    [Help("overrides giving the final evaluation's test slices (e.g. longer lengths), scored once after training, followed by " +
        "the final_eval of the run's axis values; none in either = the run's own test slices")]
    public string[] FinalEval { get; init; } = [];
    [Help("evaluation variants: the final evaluation is run once per variant (e.g. the state-collapse mitigations), and the " +
        "matrix memories' state norms are recorded; null = the model as trained only")]
    public EvalVariants? EvalVariants { get; init; }

    /// <summary>A learning rate as run ids show it (3 significant digits).</summary>
    public static string LrText(double lr) => lr.ToString("G3", CultureInfo.InvariantCulture);

    internal static bool IsSafeName(string s) => s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    public IEnumerable<(string, string)> Validate()
    {
        if (!IsSafeName(Name)) yield return ("name", $"\"{Name}\" must be non-empty and use only letters, digits, '.', '_' and '-'");
        if (LearningRates.Length == 0) yield return ("learning_rates", "needs at least one learning rate");
        for (int i = 0; i < LearningRates.Length; i++)
            if (!(LearningRates[i] > 0 && LearningRates[i] <= 10))
                yield return ($"learning_rates[{i}]", $"{LearningRates[i]} is not in (0, 10]");
        foreach (var dup in Axes.GroupBy(a => a.Name).Where(g => g.Count() > 1))
            yield return ("axes", $"the axis name \"{dup.Key}\" appears {dup.Count()} times");
        if (Axes.Any(a => a.Name == "lr")) yield return ("axes", "\"lr\" is reserved for learning_rates");
        foreach (var dup in LearningRates.GroupBy(LrText).Where(g => g.Count() > 1))
            yield return ("learning_rates", $"{string.Join(" and ", dup.Select(l => l.ToString("R", CultureInfo.InvariantCulture)))} " +
                $"both name runs \"lr={dup.Key}\"; give distinct rates (3 significant digits)");
    }

    const string PresetPrefix = "Mnemo.Sweeps.";

    /// <summary>Names of the sweeps bundled in the library (configs/sweeps/*.json).</summary>
    public static IReadOnlyList<string> Presets() => typeof(SweepConfig).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(PresetPrefix, StringComparison.Ordinal))
        .Select(n => n[PresetPrefix.Length..^".json".Length]).Order().ToList();

    /// <summary>Loads a sweep from a file or, when no such file exists, from the bundled sweep of that name.</summary>
    public static SweepConfig Load(string fileOrPreset)
    {
        string text, source;
        if (Paths.KindOf(fileOrPreset) != PathKind.Missing)
        {
            Paths.CheckReadable(fileOrPreset, "sweep config");
            (text, source) = (File.ReadAllText(fileOrPreset), fileOrPreset);
        }
        else if (Presets().Contains(fileOrPreset))
        {
            using var stream = typeof(SweepConfig).Assembly.GetManifestResourceStream(PresetPrefix + fileOrPreset + ".json")!;
            (text, source) = (new StreamReader(stream).ReadToEnd(), $"bundled sweep {fileOrPreset}");
        }
        else throw new ConfigException($"sweep config \"{fileOrPreset}\": no such file, and no bundled sweep by that name (bundled: " +
            $"{string.Join(", ", Presets())})");
        return Parse(text, source);
    }

    /// <summary>
    /// Binds and checks a sweep, including every run it expands to, so a bad cell fails before any training. A base
    /// or an override in the old flat form is an error that says how to convert it.
    /// </summary>
    public static SweepConfig Parse(string json, string source) => Parse(json, source, saved: false);

    /// <summary>A sweep folder's own sweep.json: one written by an older build in the old flat form is converted
    /// (base and overrides; <see cref="LegacyConfig"/>), so the sweep resumes and keeps its results.</summary>
    public static SweepConfig ParseSaved(string json, string source) => Parse(json, source, saved: true);

    static SweepConfig Parse(string json, string source, bool saved)
    {
        var node = ConfigBinder.ParseText(json, source);
        if (node is JsonObject root)
        {
            if (root["base"] is JsonObject run)
            {
                if (saved) LegacyConfig.Convert(run, $"{source}, base");
                else LegacyConfig.Reject(run, $"{source}, base");
            }
            if (saved) ConvertOverrides(root);
        }
        var sweep = ConfigBinder.Bind<SweepConfig>(node, source);
        _ = sweep.Runs(source);
        return sweep;
    }

    /// <summary>Every override list of a saved sweep (final_eval, and each axis value's set and final_eval) in the new form.</summary>
    static void ConvertOverrides(JsonObject root)
    {
        var lists = new List<JsonNode?> { root["final_eval"] };
        foreach (var axis in (root["axes"] as JsonArray ?? []).OfType<JsonObject>())
            foreach (var value in (axis["values"] as JsonArray ?? []).OfType<JsonObject>())
                lists.AddRange([value["set"], value["final_eval"]]);
        foreach (var list in lists.OfType<JsonArray>())
            for (int i = 0; i < list.Count; i++)
                if (list[i] is JsonValue v && v.TryGetValue<string>(out var set) && LegacyConfig.ConvertOverride(set) is { } now)
                    list[i] = now;
    }

    /// <summary>The sweep with FIELD=VALUE overrides (as --set) applied to its base run config; every run is checked.</summary>
    public SweepConfig WithBase(IReadOnlyCollection<string> overrides)
    {
        if (overrides.Count == 0) return this;
        string source = $"sweep {Name} with --set {string.Join(" ", overrides)}";
        var updated = this with { Base = RunConfig.Parse(Base.ToJson(), source, overrides) };
        _ = updated.Runs(source);
        return updated;
    }

    /// <summary>Every run of the sweep, in a fixed order (axes in order, the last varying fastest; then lr).</summary>
    public IReadOnlyList<SweepRun> Runs(string source = "sweep")
    {
        var combos = new List<SweepValue[]> { Array.Empty<SweepValue>() };
        foreach (var axis in Axes)
            combos = combos.SelectMany(c => axis.Values.Select(v => c.Append(v).ToArray())).ToList();
        var runs = new List<SweepRun>();
        foreach (var combo in combos)
            foreach (double lr in LearningRates)
            {
                var cell = Axes.Zip(combo, (a, v) => (a.Name, v.Name)).ToDictionary(p => p.Item1, p => p.Item2);
                string cellId = cell.Count == 0 ? "base" : string.Join(",", cell.Select(p => $"{p.Key}={p.Value}"));
                string lrText = LrText(lr);
                var overrides = combo.SelectMany(v => v.Set).Append($"training.lr={lr.ToString("R", CultureInfo.InvariantCulture)}")
                    .ToList();
                string where = $"{source} (run {cellId}, lr {lrText})";
                var config = RunConfig.Parse(Base.ToJson(), where, overrides);
                var evalOverrides = FinalEval.Concat(combo.SelectMany(v => v.FinalEval)).ToList();
                var finalEval = evalOverrides.Count == 0 ? null : RunConfig.Parse(config.ToJson(), $"{where}, final_eval", evalOverrides);
                if (EvalVariants is not null && !EvalVariants.MatrixMemories.Contains(config.ResolvedModel.Mixer))
                    throw new ConfigException($"{where}: eval_variants: " +
                        $"{Names.Of(config.ResolvedModel.Mixer)} has no matrix memory; " +
                        "the variants apply to mamba2, gla, retnet, gated_delta_net, delta_net and linear_attention");
                runs.Add(new SweepRun($"{cellId},lr={lrText}", cellId, cell, lr, config, finalEval) { Variants = EvalVariants });
            }
        return runs;
    }
}

/// <summary>
/// One run of a sweep: its id (cell and learning rate), the cell's axis values, its full run config, the config
/// whose test slices the final evaluation scores (null: the run's own) and the variants it is scored under (null: none).
/// </summary>
public sealed record SweepRun(string Id, string CellId, IReadOnlyDictionary<string, string> Cell, double Lr, RunConfig Config,
    RunConfig? FinalEval)
{
    public EvalVariants? Variants { get; init; }

    /// <summary>The run's folder name: the id with characters unsafe in paths replaced.</summary>
    public string Folder => Id.Replace(',', '_').Replace('=', '-');

    public JsonObject CellJson()
    {
        var o = new JsonObject();
        foreach (var (k, v) in Cell) o[k] = v;
        return o;
    }
}
