using System.Globalization;
using System.Text.Json;
using Mnemo.IO;
using Mnemo.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Training;

/// <summary>Where a run stands: enough to continue it bit for bit.</summary>
public sealed record TrainerState
{
    public long Step { get; init; }
    public double BestAccuracy { get; init; }
    public bool Finished { get; init; }
    /// <summary>The run stopped because it reached training.target_accuracy (kept so a finished run resumed later says so).</summary>
    public bool ReachedTarget { get; init; }
    public double ElapsedSeconds { get; init; }
    /// <summary>libtorch's global generator state (base64) — no op draws from it today, but dropout would.</summary>
    public string RngState { get; init; } = "";
    /// <summary>The first step's loss (an untrained model's), the reference of the divergence check; 0 = not yet seen.</summary>
    public double InitialLoss { get; init; }
    /// <summary>The loss smoothed over about ten steps (an exponential moving average), carried so resume stays exact.</summary>
    public double SmoothedLoss { get; init; }
}

/// <summary>
/// A checkpoint is a folder runs/NAME/checkpoints/step-NNNNNNNN holding model.safetensors, optimizer.safetensors,
/// trainer_state.json and config.json. It is assembled in a temp folder and renamed into place, so a folder with
/// the final name is always complete; a crash leaves at most a stale temp folder, which the next run removes.
/// </summary>
public static class Checkpoint
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFile = "trainer_state.json";
    public const string ConfigFile = "config.json";
    const string Prefix = "step-";

    public static string Folder(string runDir) => Path.Combine(runDir, "checkpoints");

    public static string Save(string runDir, RunConfig config, LanguageModel model, AdamW optimizer, TrainerState state, int keep)
    {
        string root = Folder(runDir);
        Directory.CreateDirectory(root);
        string final = Path.Combine(root, $"{Prefix}{state.Step:D8}");
        string tmp = Path.Combine(root, $".tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            TensorIO.SaveStateDict(model, Path.Combine(tmp, ModelFile),
                new Dictionary<string, string> { ["format"] = "pt", ["step"] = state.Step.ToString(CultureInfo.InvariantCulture) });
            SaveOptimizer(optimizer, Path.Combine(tmp, OptimizerFile));
            AtomicFile.WriteAllText(Path.Combine(tmp, StateFile), JsonSerializer.Serialize(state, ConfigBinder.WriteOptions));
            AtomicFile.WriteAllText(Path.Combine(tmp, ConfigFile), config.ToJson());
            // The same step saved twice: set the old copy aside first, so no moment shows a half-deleted checkpoint.
            string? aside = Directory.Exists(final) ? SetAside(root, final) : null;
            Directory.Move(tmp, final);
            if (aside is not null) Directory.Delete(aside, recursive: true);
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
        foreach (var old in List(runDir).SkipLast(keep)) Directory.Delete(SetAside(root, old), recursive: true);
        return final;
    }

    /// <summary>
    /// Renames a checkpoint folder to a temp name (atomic) before it is deleted file by file: a process killed mid-delete
    /// leaves a temp folder, which the next run removes, never a checkpoint folder with files missing.
    /// </summary>
    static string SetAside(string root, string checkpoint)
    {
        string aside = Path.Combine(root, $".tmp-{Guid.NewGuid():N}");
        Directory.Move(checkpoint, aside);
        return aside;
    }

    /// <summary>Complete checkpoint folders of a run, oldest first.</summary>
    public static IReadOnlyList<string> List(string runDir)
    {
        string root = Folder(runDir);
        if (!Directory.Exists(root)) return [];
        return Directory.GetDirectories(root, Prefix + "*").Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Removes temp folders and files left by a run that was killed while saving.</summary>
    public static void RemoveStale(string runDir)
    {
        AtomicFile.RemoveLeftovers(runDir);                                     // config.json, metrics.jsonl rewrites
        string root = Folder(runDir);
        if (!Directory.Exists(root)) return;
        foreach (var d in Directory.GetDirectories(root, ".tmp-*")) Directory.Delete(d, recursive: true);
    }

    /// <summary>
    /// Resolves what the user pointed at: a checkpoint folder, or a run folder (its newest checkpoint).
    /// </summary>
    public static string Resolve(string path)
    {
        if (File.Exists(Path.Combine(path, ModelFile))) return path;
        var all = List(path);
        if (all.Count > 0) return all[^1];
        throw new MnemoException(Directory.Exists(path)
            ? $"{path}: no checkpoint here (expected {ModelFile}, or a run folder with checkpoints/{Prefix}*)"
            : $"{path}: no such folder");
    }

    public static RunConfig ReadConfig(string checkpointDir) =>
        RunConfig.LoadSaved(Path.Combine(checkpointDir, ConfigFile));

    /// <summary>
    /// What a checkpoint (or a run folder's newest one) holds, ready to use: its folder, its config with the
    /// <paramref name="overrides"/> applied (task fields only change what it is tested on), and its model with the saved
    /// weights; libtorch is set to the run's threads first.
    /// </summary>
    public static (string Dir, RunConfig Config, LanguageModel Model) LoadModel(string path, IReadOnlyList<string>? overrides = null)
    {
        string dir = Resolve(path);
        var config = RunConfig.LoadSaved(Path.Combine(dir, ConfigFile), overrides ?? []);
        Runtime.TorchRuntime.Initialise(config.Training.Threads);
        var model = config.NewModel();
        TensorIO.LoadStateDict(model, Path.Combine(dir, ModelFile));
        return (dir, config, model);
    }

    /// <summary>
    /// Loads the weights of a checkpoint (or a run folder's newest one) into a model built from another config: a run's
    /// training.init_from, `mnemo convert`'s check. Names and shapes must match, except the model's LoRA updates, which
    /// a checkpoint made without them lacks (they keep their zero start). Returns the checkpoint's folder.
    /// </summary>
    public static string LoadWeightsInto(LanguageModel model, string path)
    {
        string dir = Resolve(path);
        TensorIO.LoadStateDict(model, Path.Combine(dir, ModelFile), optional: LowRank.IsLowRank);
        return dir;
    }

    public static TrainerState ReadState(string checkpointDir)
    {
        string path = Path.Combine(checkpointDir, StateFile);
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), ConfigBinder.WriteOptions)
                ?? throw new MnemoException($"{path}: empty");
        }
        catch (JsonException e)
        {
            throw new MnemoException($"{path}: not a valid trainer state: {e.Message}");
        }
    }

    /// <summary>AdamW's moments per parameter, in parameter order, plus each parameter's step count.</summary>
    static void SaveOptimizer(AdamW optimizer, string path)
    {
        var states = optimizer.state_dict().State;
        var entries = new List<SafeTensorEntry>();
        var meta = new Dictionary<string, string> { ["count"] = states.Count.ToString(CultureInfo.InvariantCulture) };
        for (int i = 0; i < states.Count; i++)
        {
            var s = (AdamW.State)states[i];
            entries.Add(TensorIO.ToEntry($"exp_avg.{i}", s.exp_avg));
            entries.Add(TensorIO.ToEntry($"exp_avg_sq.{i}", s.exp_avg_sq));
            meta[$"step.{i}"] = s.step.ToString(CultureInfo.InvariantCulture);
        }
        SafeTensors.Write(path, entries, meta);
    }

    public static void LoadOptimizer(AdamW optimizer, string checkpointDir)
    {
        string path = Path.Combine(checkpointDir, OptimizerFile);
        var file = SafeTensors.Read(path);
        var states = optimizer.state_dict().State;
        if (!file.Metadata.TryGetValue("count", out var count) || count != states.Count.ToString(CultureInfo.InvariantCulture))
            throw new MnemoException($"{path}: holds optimizer state for {count ?? "an unknown number of"} parameters, " +
                $"the model has {states.Count}");
        // As strict as the model reader: exactly the moments of every parameter, nothing else.
        var expected = Enumerable.Range(0, states.Count).SelectMany(i => new[] { $"exp_avg.{i}", $"exp_avg_sq.{i}" }).ToHashSet();
        if (file.Tensors.FirstOrDefault(e => !expected.Contains(e.Name)) is { } extra)
            throw new MnemoException($"{path}: unexpected tensor \"{extra.Name}\" (an optimizer file holds exp_avg.i and exp_avg_sq.i)");
        using var noGrad = no_grad();
        for (int i = 0; i < states.Count; i++)
        {
            var s = (AdamW.State)states[i];
            Copy(s.exp_avg, $"exp_avg.{i}");
            Copy(s.exp_avg_sq, $"exp_avg_sq.{i}");
            if (!file.Metadata.TryGetValue($"step.{i}", out var step) || !long.TryParse(step, CultureInfo.InvariantCulture, out s.step))
                throw new MnemoException($"{path}: metadata \"step.{i}\" is missing or not a number");
        }

        void Copy(Tensor target, string name)
        {
            if (!file.TryGet(name, out var e)) throw new MnemoException($"{path}: tensor \"{name}\" is missing");
            if (!e!.Shape.SequenceEqual(target.shape))
                throw new MnemoException($"{path}: tensor \"{name}\" has shape [{string.Join(", ", e.Shape)}], " +
                    $"expected [{string.Join(", ", target.shape)}]");
            var want = TensorIO.ToFile(target.dtype, name);
            if (e.DType != want)
                throw new MnemoException($"{path}: tensor \"{name}\" is {e.DType.ToSpecName()}, expected {want.ToSpecName()}");
            using var source = TensorIO.ToTensor(e);
            if (!isfinite(source).all().item<bool>()) throw new MnemoException($"{path}: tensor \"{name}\" holds NaN or infinite values");
            if (name.StartsWith("exp_avg_sq", StringComparison.Ordinal) && source.lt(0).any().item<bool>())
                throw new MnemoException($"{path}: tensor \"{name}\" has negative entries (a second moment is ≥ 0)");
            target.copy_(source);
        }
    }
}
