using System.Text.Json;
using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Tasks.LanguageModeling;
using Mnemo.Text;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Interop;

/// <summary>
/// A checkpoint folder in the Hugging Face layout fla writes (docs/interop.md): config.json and the weights, in one
/// model.safetensors or in shards named by model.safetensors.index.json. <see cref="Import"/> makes a Mnemo run of it;
/// <see cref="Export"/> writes a Mnemo checkpoint that way. Weight names are fla's, which are Mnemo's own but for GLA's
/// output norm (<see cref="FlaConfig.FlaName"/>).
/// </summary>
public static class FlaCheckpoint
{
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", IndexFile = "model.safetensors.index.json";

    /// <summary>The model an fla checkpoint folder describes, with its weights loaded (fp32, whatever the file held).</summary>
    public static (ModelConfig Config, LanguageModel Model) Read(string dir)
    {
        if (!Directory.Exists(dir)) throw new MnemoException($"{dir}: no such folder");
        string configPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(configPath)) throw new MnemoException($"{dir}: no {ConfigFile} (an fla checkpoint folder has one)");
        JsonObject json;
        try { json = HfConfigKeys.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new JsonException("not an object"); }
        catch (JsonException e) { throw new MnemoException($"{configPath}: not a JSON object ({e.Message})"); }
        var config = FlaConfig.FromHf(json, configPath);
        var model = new LanguageModel(config);
        try
        {
            Load(model, config, Weights(dir));
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return (config, model);
    }

    /// <summary>Each tensor's name and the file it is in: the index's weight map, or every tensor of model.safetensors.</summary>
    static Dictionary<string, SafeTensorsFile> Weights(string dir)
    {
        string index = Path.Combine(dir, IndexFile), single = Path.Combine(dir, WeightsFile);
        var files = new Dictionary<string, SafeTensorsFile>();
        var map = new Dictionary<string, SafeTensorsFile>();
        if (File.Exists(index))
        {
            JsonObject weightMap;
            try
            {
                weightMap = JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as JsonObject
                    ?? throw new JsonException("no \"weight_map\" object");
            }
            catch (JsonException e) { throw new MnemoException($"{index}: not a shard index ({e.Message})"); }
            foreach (var (name, node) in weightMap)
            {
                string shard = node?.GetValue<string>() ?? throw new MnemoException($"{index}: \"{name}\" names no file");
                if (shard.Contains('/') || shard.Contains('\\')) throw new MnemoException($"{index}: shard \"{shard}\" is not a file name");
                if (!files.TryGetValue(shard, out var file))
                {
                    string path = Path.Combine(dir, shard);
                    if (!File.Exists(path)) throw new MnemoException($"{index}: shard {shard} is missing from {dir}");
                    files[shard] = file = SafeTensors.Read(path);
                }
                if (!file.TryGet(name, out _)) throw new MnemoException($"{index}: \"{name}\" is not in {shard}");
                map[name] = file;
            }
        }
        else if (File.Exists(single))
        {
            var file = SafeTensors.Read(single);
            foreach (var e in file.Tensors) map[e.Name] = file;
        }
        else throw new MnemoException($"{dir}: no {WeightsFile} and no {IndexFile}");
        return map;
    }

    /// <summary>
    /// Copies the file's tensors into the model by name, as fp32. fla leaves lm_head out of a tied checkpoint and may
    /// hold an unused attn.D from before March 2025; anything else missing, extra or of another shape is one error.
    /// </summary>
    static void Load(LanguageModel model, ModelConfig config, Dictionary<string, SafeTensorsFile> weights)
    {
        // Mnemo's parameters under the names fla gives them.
        var expected = model.state_dict().ToDictionary(kv => FlaConfig.FlaName(kv.Key, config), kv => kv.Value);
        var problems = new List<string>();
        foreach (var name in expected.Keys.Where(k => !weights.ContainsKey(k))) problems.Add($"missing \"{name}\"");
        foreach (var name in weights.Keys.Where(k => !expected.ContainsKey(k) && !Ignorable(k, config)))
            problems.Add($"unexpected \"{name}\"");
        foreach (var (name, target) in expected)
        {
            if (!weights.TryGetValue(name, out var file)) continue;
            file.TryGet(name, out var e);
            if (!e!.Shape.SequenceEqual(target.shape))
                problems.Add($"\"{name}\" has shape [{string.Join(", ", e.Shape)}], " +
                    $"the config makes it [{string.Join(", ", target.shape)}]");
            else if (e.DType is not (SafeTensorDType.F32 or SafeTensorDType.BF16 or SafeTensorDType.F16 or SafeTensorDType.F64))
                problems.Add($"\"{name}\" is {e.DType}, not a floating-point type");
        }
        if (problems.Count > 0)
            throw new MnemoException($"the weights do not match the config: {string.Join("; ", problems.Take(10))}" +
                (problems.Count > 10 ? $"; and {problems.Count - 10} more" : ""));
        using var noGrad = no_grad();
        foreach (var (name, target) in expected)
        {
            weights[name].TryGet(name, out var e);
            using var source = TensorIO.ToTensor(e!);
            if (!isfinite(source).all().item<bool>()) throw new MnemoException($"\"{name}\" holds NaN or infinite values");
            target.copy_(source.to(target.dtype));
        }
    }

    static bool Ignorable(string name, ModelConfig config) =>
        (name == "lm_head.weight" && config.TieEmbeddings)
        || (name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith(".attn.D", StringComparison.Ordinal));

    /// <summary>
    /// Makes a Mnemo run folder of an fla checkpoint: run config (the model, a language-modelling task with the given
    /// tokenizer) and one checkpoint, step 0, that `mnemo generate`, `eval` and `train --set training.init_from` read.
    /// Returns the checkpoint folder.
    /// </summary>
    public static string Import(string dir, string runDir, TokenizerKind tokenizer)
    {
        var (config, model) = Read(dir);
        using var loaded = model;
        var run = new RunConfig
        {
            Description = $"imported from the fla checkpoint {Path.GetFullPath(dir)}",
            Model = config,
            Task = new LanguageModelingConfig { Text = new TextConfig { Tokenizer = tokenizer } },
        };
        var problems = run.Validate().ToList();
        if (problems.Count > 0)
            throw new MnemoException("the imported model cannot run as a Mnemo run: " +
                string.Join("; ", problems.Select(p => $"{p.Item1}: {p.Item2}")));
        if (Directory.Exists(runDir) && Directory.EnumerateFileSystemEntries(runDir).Any())
            throw new MnemoException($"--out {runDir}: the folder is not empty (import writes a new run)");
        string checkpoint = Path.Combine(Checkpoint.Folder(runDir), "step-00000000");
        Directory.CreateDirectory(checkpoint);
        TensorIO.SaveStateDict(model, Path.Combine(checkpoint, Checkpoint.ModelFile),
            new Dictionary<string, string> { ["source"] = "fla" });
        AtomicFile.WriteAllText(Path.Combine(checkpoint, Checkpoint.ConfigFile), run.ToJson());
        AtomicFile.WriteAllText(Path.Combine(runDir, Checkpoint.ConfigFile), run.ToJson());
        return checkpoint;
    }

    /// <summary>Writes a Mnemo checkpoint (or a run's newest) as an fla checkpoint folder: config.json and model.safetensors
    /// (fp32).</summary>
    public static void Export(string checkpointPath, string outDir)
    {
        var (_, run, model) = Checkpoint.LoadModel(checkpointPath);
        using var loaded = model;
        var config = FlaConfig.ToHf(run.ResolvedModel);
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new MnemoException($"--out {outDir}: the folder is not empty");
        Directory.CreateDirectory(outDir);
        var m = run.ResolvedModel;
        SafeTensors.Write(Path.Combine(outDir, WeightsFile),
            model.state_dict().Select(kv => TensorIO.ToEntry(FlaConfig.FlaName(kv.Key, m), kv.Value)),
            new Dictionary<string, string> { ["format"] = "pt" });
        var indented = new JsonSerializerOptions { WriteIndented = true };
        AtomicFile.WriteAllText(Path.Combine(outDir, ConfigFile), config.ToJsonString(indented) + "\n");
    }
}
