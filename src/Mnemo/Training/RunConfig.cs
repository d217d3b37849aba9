using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>
/// Everything a training run needs: model, task and training settings. The task is one of the kinds of
/// <see cref="ITask"/>, written <c>"task": {"kind": "passkey", …}</c>; a config that names none trains on MQAR.
/// </summary>
public sealed record RunConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    public ModelConfig Model { get; init; } = new();
    [Help("the task the run trains and tests on: \"kind\" names it (mqar, passkey, niah, …; `mnemo list`), the other fields are " +
        "that kind's settings")]
    public ITask Task { get; init; } = new MqarConfig();
    public TrainingConfig Training { get; init; } = new();

    /// <summary>The task's kind ("mqar", "passkey", …), for error messages and result files.</summary>
    [JsonIgnore] public string TaskKind => ConfigUnion.Of(typeof(ITask))!.KindOf(Task.GetType());

    /// <summary>The model config with the vocabulary filled in from the task.</summary>
    [JsonIgnore]
    public ModelConfig ResolvedModel => Model.VocabSize == 0 ? Model with { VocabSize = Task.VocabSize } : Model;

    /// <summary>A freshly initialised model for this run: <see cref="ResolvedModel"/>, with the task's compression
    /// decoder if it has one, and with training.lora_rank the low-rank updates (<see cref="LowRank"/>).</summary>
    public LanguageModel NewModel()
    {
        var model = new LanguageModel(ResolvedModel, Task.CompressionDecoderTargets());
        if (Training.LoraRank > 0) LowRank.Apply(model, Training);
        return model;
    }

    public IEnumerable<(string, string)> Validate()
    {
        if (Model.VocabSize != 0 && Model.VocabSize < Task.VocabSize)
            yield return ("model.vocab_size", $"{Model.VocabSize} is smaller than task.vocab_size {Task.VocabSize} ({TaskKind})");
        if (LanguageModel.BidirectionalProblem(Model) is { } problem) yield return ("model.rnn.bidirectional", problem);
        int longest = Task.LongestSeqLen();
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
    /// Loads a run folder's own config.json. A saved config keeps meaning what it meant when it was written: one saved
    /// in the old flat form is converted (<see cref="LegacyConfig"/>), and runs saved before the deep memory's
    /// normalized_step was always written (and before it defaulted to true) omit it and mean false.
    /// </summary>
    public static RunConfig LoadSaved(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path)) throw new ConfigException($"{path}: no such file");
        return Parse(File.ReadAllText(path), path, overrides, savedRun: true);
    }

    /// <summary>
    /// Binds a run config; overrides are applied first. A config in the old flat form is an error that says how to
    /// convert it, unless it is a saved run's (<paramref name="savedRun"/>), which is converted.
    /// </summary>
    public static RunConfig Parse(string json, string source, IEnumerable<string>? overrides = null, bool savedRun = false)
    {
        var node = ConfigBinder.ParseText(json, source);
        if (node is not JsonObject root) throw new ConfigException($"{source}: expected a JSON object at the top level");
        var sets = (overrides ?? []).ToList();
        foreach (var set in sets) LegacyConfig.RejectOverride(set, source);
        if (savedRun)
        {
            LegacyConfig.Convert(root, source);
            if (root["model"] is JsonObject model && model["deep"]?["normalized_step"] is null)
            {
                if (model["deep"] is not JsonObject deep) model["deep"] = deep = new JsonObject();
                deep["normalized_step"] = false;
            }
        }
        else LegacyConfig.Reject(root, source);
        ConfigBinder.ApplyOverrides<RunConfig>(root, sets);
        return ConfigBinder.Bind<RunConfig>(root, source);
    }

    public string ToJson() => ConfigBinder.ToJson(this);
}
