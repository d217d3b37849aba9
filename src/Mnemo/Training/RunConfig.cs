using System.Reflection;
using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Models;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>Everything a training run needs: model, task and training settings.</summary>
public sealed record RunConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public ModelConfig Model { get; init; } = new();
    public MqarConfig Task { get; init; } = new();

    /// <summary>Set, it replaces <see cref="Task"/> as the run's task. An optional section rather than a task
    /// union keeps every existing MQAR config valid as it stands.</summary>
    [Help("passkey retrieval task; when present the run trains and tests on it and ignores task (MQAR)")]
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public PasskeyConfig? Passkey { get; init; }
    public TrainingConfig Training { get; init; } = new();

    /// <summary>The task the run trains and tests on.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public ITask ActiveTask => Passkey ?? (ITask)Task;

    /// <summary>Name of the active task's config section, for error messages.</summary>
    [System.Text.Json.Serialization.JsonIgnore] string TaskSection => Passkey is null ? "task" : "passkey";

    /// <summary>The model config with the vocabulary filled in from the task.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public ModelConfig ResolvedModel => Model.VocabSize == 0 ? Model with { VocabSize = ActiveTask.VocabSize } : Model;

    public IEnumerable<(string, string)> Validate()
    {
        if (Model.VocabSize != 0 && Model.VocabSize < ActiveTask.VocabSize)
            yield return ("model.vocab_size", $"{Model.VocabSize} is smaller than {TaskSection}.vocab_size {ActiveTask.VocabSize}");
        int longest = ActiveTask.LongestSeqLen();
        if (Model.Positions == PositionKind.Learned && longest > Model.MaxPositions)
            yield return ("model.max_positions", $"{Model.MaxPositions} is shorter than the longest sequence ({longest}) and positions are learned");
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
        if (File.Exists(fileOrPreset)) (text, source) = (File.ReadAllText(fileOrPreset), fileOrPreset);
        else if (Presets().Contains(fileOrPreset)) (text, source) = (PresetText(fileOrPreset), $"preset {fileOrPreset}");
        else throw new ConfigException($"config \"{fileOrPreset}\": no such file, and no preset by that name (presets: {string.Join(", ", Presets())})");
        return Parse(text, source, overrides);
    }

    public static RunConfig Parse(string json, string source, IEnumerable<string>? overrides = null)
    {
        var node = ConfigBinder.ParseText(json, source);
        if (node is not JsonObject root) throw new ConfigException($"{source}: expected a JSON object at the top level");
        ConfigBinder.ApplyOverrides<RunConfig>(root, overrides ?? []);
        return ConfigBinder.Bind<RunConfig>(root, source);
    }

    public string ToJson() => ConfigBinder.ToJson(this);
}
