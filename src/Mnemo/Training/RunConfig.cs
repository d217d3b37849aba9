using System.Reflection;
using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>
/// Everything a training run needs: model, task and training settings. The task is MQAR (<see cref="Task"/>) unless
/// one optional task section is present; each task kind adds its section in its own partial file
/// (RunConfig.Tasks*.cs), and <see cref="ActiveTask"/> finds it by reflection, so adding a task touches no switch.
/// </summary>
public sealed partial record RunConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public ModelConfig Model { get; init; } = new();
    [Help("multi-query associative recall, Zoology's semantics (docs/tasks.md#mqar); the task when no other task section is present")]
    public MqarConfig Task { get; init; } = new();

    /// <summary>Set, it replaces <see cref="Task"/> as the run's task. An optional section rather than a task
    /// union keeps every existing MQAR config valid as it stands.</summary>
    [Help(
        "token-level passkey retrieval, S-NIAH-1 style: find \"needle key d1…dn\" in a haystack, answer after \"query key\"" +
        " (docs/tasks.md#passkey)")]
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public PasskeyConfig? Passkey { get; init; }
    public TrainingConfig Training { get; init; } = new();

    /// <summary>The task the run trains and tests on: the one optional task section present, else MQAR.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public ITask ActiveTask => OptionalTasks().Select(t => t.Task).FirstOrDefault() ?? Task;

    /// <summary>Name of the active task's config section, for error messages and result files.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string TaskSection => OptionalTasks().Select(t => t.Section).FirstOrDefault() ?? "task";

    static readonly PropertyInfo[] OptionalTaskProperties = typeof(RunConfig).GetProperties()
        // settable: not ActiveTask itself
        .Where(p => p.CanWrite && p.PropertyType != typeof(MqarConfig) && typeof(ITask).IsAssignableFrom(p.PropertyType)).ToArray();

    /// <summary>The optional task sections that are present, with their snake_case names.</summary>
    IEnumerable<(string Section, ITask Task)> OptionalTasks() => OptionalTaskProperties
        .Select(p => (System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name), p.GetValue(this) as ITask))
        .Where(t => t.Item2 is not null).Select(t => (t.Item1, t.Item2!));

    /// <summary>The model config with the vocabulary filled in from the task.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public ModelConfig ResolvedModel => Model.VocabSize == 0 ? Model with { VocabSize = ActiveTask.VocabSize } : Model;

    public IEnumerable<(string, string)> Validate()
    {
        var present = OptionalTasks().Select(t => t.Section).ToList();
        if (present.Count > 1)
            yield return (present[1], $"only one task section may be present, found {string.Join(", ", present)}");
        if (Model.VocabSize != 0 && Model.VocabSize < ActiveTask.VocabSize)
            yield return ("model.vocab_size", $"{Model.VocabSize} is smaller than {TaskSection}.vocab_size {ActiveTask.VocabSize}");
        int longest = ActiveTask.LongestSeqLen();
        if (Model.Positions == PositionKind.Learned && longest > Model.MaxPositions)
            yield return ("model.max_positions", $"{Model.MaxPositions} is shorter than the longest sequence ({longest}) and " +
                $"positions are learned");
    }

    const string PresetPrefix = "Mnemo.Presets.";

    /// <summary>Names of the presets bundled in the library (configs/*.json).</summary>
    public static IReadOnlyList<string> Presets() => typeof(RunConfig).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(PresetPrefix, StringComparison.Ordinal))
        .Select(n => n[PresetPrefix.Length..^".json".Length]).Order().ToList();

    public static string PresetText(string name)
    {
        using var stream = typeof(RunConfig).Assembly.GetManifestResourceStream(PresetPrefix + name + ".json")
            ?? throw new ConfigException($"no preset named \"{name}\"; presets: {string.Join(", ", Presets())}");
        return new StreamReader(stream).ReadToEnd();
    }

    /// <summary>
    /// Loads a config from a file path or, when no such file exists and the text names a preset, from the preset.
    /// Overrides ("training.lr=3e-4") are applied before validation.
    /// </summary>
    public static RunConfig Load(string fileOrPreset, IEnumerable<string>? overrides = null)
    {
        string text, source;
        if (Paths.KindOf(fileOrPreset) != PathKind.Missing)
        {
            Paths.CheckReadable(fileOrPreset, "config file");
            (text, source) = (File.ReadAllText(fileOrPreset), fileOrPreset);
        }
        else if (Presets().Contains(fileOrPreset)) (text, source) = (PresetText(fileOrPreset), $"preset {fileOrPreset}");
        else throw new ConfigException($"config \"{fileOrPreset}\": no such file, and no preset by that name (presets: " +
            $"{string.Join(", ", Presets())})");
        return Parse(text, source, overrides);
    }

    /// <summary>
    /// Loads a run folder's own config.json. A saved config keeps meaning what it meant when it was written: runs saved
    /// before <c>memory_normalized_step</c> was always written (and before it defaulted to true) omit it and mean false.
    /// </summary>
    public static RunConfig LoadSaved(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path)) throw new ConfigException($"{path}: no such file");
        return Parse(File.ReadAllText(path), path, overrides, savedRun: true);
    }

    public static RunConfig Parse(string json, string source, IEnumerable<string>? overrides = null, bool savedRun = false)
    {
        var node = ConfigBinder.ParseText(json, source);
        if (node is not JsonObject root) throw new ConfigException($"{source}: expected a JSON object at the top level");
        if (savedRun && root["model"] is JsonObject model && !model.ContainsKey("memory_normalized_step"))
            model["memory_normalized_step"] = false;
        ConfigBinder.ApplyOverrides<RunConfig>(root, overrides ?? []);
        return ConfigBinder.Bind<RunConfig>(root, source);
    }

    public string ToJson() => ConfigBinder.ToJson(this);
}
