using System.Text.Json.Nodes;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Tasks;

namespace Mnemo.Training;

/// <summary>
/// The run config's old flat form (before issue 12 §5; docs/cli.md#the-old-flat-form): every model setting at
/// model's top level (model.memory_depth, model.num_memories, …, model.compression_targets) and the task as either
/// an MQAR "task" without a kind or one of ten optional top-level sections ("passkey": {…}). A config file or
/// override in that form is refused with the conversion spelled out; a run folder saved in it (read by
/// <see cref="RunConfig.LoadSaved"/>) or a sweep's saved sweep.json is converted in memory, so old runs resume.
/// </summary>
static class LegacyConfig
{
    /// <summary>Old flat model key → its path under model now.</summary>
    static readonly Dictionary<string, string> ModelMoves = new()
    {
        ["window"] = "attention.window",
        ["feature_map"] = "matrix.feature_map",
        ["normalize"] = "matrix.normalize",
        ["chunk_size"] = "matrix.chunk_size",
        ["dt_min"] = "matrix.dt_min",
        ["dt_max"] = "matrix.dt_max",
        ["num_memories"] = "mom.num_memories",
        ["top_k"] = "mom.top_k",
        ["shared_memory"] = "mom.shared_memory",
        ["mom_rule"] = "mom.rule",
        ["router_aux_loss_coef"] = "mom.router_aux_loss_coef",
        ["memory_depth"] = "deep.depth",
        ["memory_expansion"] = "deep.expansion",
        ["memory_activation"] = "deep.activation",
        ["memory_residual_norm"] = "deep.residual_norm",
        ["memory_chunk_size"] = "deep.chunk_size",
        ["memory_max_lr"] = "deep.max_lr",
        ["memory_forget_bias"] = "deep.forget_bias",
        ["memory_gate_pooling"] = "deep.gate_pooling",
        ["memory_grad_clip"] = "deep.grad_clip",
        ["memory_window"] = "deep.window",
        ["memory_normalized_step"] = "deep.normalized_step",
        ["memory_learner"] = "deep.learner",
        ["memory_feature_map"] = "deep.feature_map",
        ["persistent_tokens"] = "titans.persistent_tokens",
        ["segment_size"] = "titans.segment_size",
    };

    /// <summary>Fields of an old task section renamed in the task union, whose tag "kind" they would collide with.</summary>
    static readonly Dictionary<(string Kind, string Field), string> TaskRenames = new() { [("parity_dms", "kind")] = "variant" };

    const string CompressionTargets = "compression_targets";
    static readonly ConfigUnion Tasks = ConfigUnion.Of(typeof(ITask))!;
    const string Mqar = "mqar";

    /// <summary>The old top-level task sections: every task kind but MQAR, which was "task" itself.</summary>
    static IEnumerable<string> TaskSections => Tasks.Names.Where(n => n != Mqar);

    /// <summary>Each old-form field of a run config, with what to write instead; empty for a config in the new form.</summary>
    public static IReadOnlyList<(string Field, string Instead)> Find(JsonObject root)
    {
        var found = new List<(string, string)>();
        if (root["model"] is JsonObject model)
        {
            foreach (var (key, _) in model)
                if (ModelMoves.TryGetValue(key, out var to)) found.Add(($"model.{key}", $"model.{to}"));
            if (model.ContainsKey(CompressionTargets))
                found.Add(($"model.{CompressionTargets}", $"task.{CompressionTargets} (in the \"mad\" task)"));
        }
        foreach (var section in TaskSections.Where(root.ContainsKey))
            found.Add((section, $"\"task\": {{\"kind\": \"{section}\", …its fields}}"));
        if (root["task"] is JsonObject task && !task.ContainsKey(Tasks.Key))
            found.Add(("task", $"\"task\": {{\"kind\": \"{Mqar}\", …}} (a task without a kind was MQAR)"));
        return found;
    }

    /// <summary>Refuses an old-form config with one error that names each old field and what to write instead.</summary>
    public static void Reject(JsonObject root, string source)
    {
        var found = Find(root);
        if (found.Count == 0) return;
        var (field, instead) = found[0];
        string more = found.Count == 1 ? "" : "; also " + string.Join("; ", found.Skip(1).Select(f => $"{f.Field} → {f.Instead}"));
        throw new ConfigException($"{source}: {field} is the old flat form: write {instead}{more} " +
            "(docs/cli.md#the-old-flat-form)");
    }

    /// <summary>Refuses an override ("model.memory_depth=2", "passkey.test=[…]") in the old form, saying what to write.</summary>
    public static void RejectOverride(string raw, string source)
    {
        if (ConvertOverride(raw) is { } now)
        {
            string field = raw[..raw.IndexOf('=')].Trim();
            throw new ConfigException($"{source}: --set {field}: {field} is the old flat form: write {now} " +
                "(docs/cli.md#the-old-flat-form)");
        }
    }

    /// <summary>Converts an old-form run config in place (a no-op on the new form). The task an old config ran is the
    /// one optional section present, else its MQAR "task"; the inactive MQAR section is dropped.</summary>
    public static void Convert(JsonObject root, string source)
    {
        if (Find(root).Count == 0) return;
        if (root["model"] is JsonObject gated && gated["output_gate"] is null && GatedDeepMemory(gated)) gated["output_gate"] = true;
        if (root["model"] is JsonObject model)
            foreach (var (key, value) in model.ToList())
                if (ModelMoves.TryGetValue(key, out var to))
                {
                    model.Remove(key);
                    var (section, field) = (to[..to.IndexOf('.')], to[(to.IndexOf('.') + 1)..]);
                    if (model[section] is not JsonObject s) model[section] = s = new JsonObject();
                    s[field] = value;
                }
        var present = TaskSections.Where(k => root[k] is JsonObject).ToList();
        if (present.Count > 1) throw new ConfigException($"{source}: holds the task sections {string.Join(", ", present)}; one at most");
        foreach (var section in TaskSections) if (root[section] is null) root.Remove(section);   // "passkey": null meant absent
        if (present.Count == 1)
        {
            var fields = root[present[0]]!.AsObject();
            root.Remove(present[0]);
            root["task"] = Tagged(present[0], fields);
        }
        else if (root["task"] is JsonObject mqar && !mqar.ContainsKey(Tasks.Key))
        {
            root.Remove("task");
            root["task"] = Tagged(Mqar, mqar);
        }
        MoveCompressionTargets(root, source);
    }

    /// <summary>
    /// True when an old-form model's unset output_gate meant a gate: the deep memories gated their read until the
    /// nested form came (docs/deep-memories.md §3), so a model with a deep memory and no ungated layer (delta_net,
    /// linear_attention) was trained with g_proj. A mix of deep and ungated layers cannot be told apart by one field
    /// and loads as written.
    /// </summary>
    static bool GatedDeepMemory(JsonObject model)
    {
        var names = model["layer_mixers"] is JsonArray { Count: > 0 } layers ? layers : new JsonArray(model["mixer"]?.DeepClone());
        // a malformed name is left for the binder to report
        var mixers = names.Select(m => m is JsonValue v && v.TryGetValue<string>(out var name)
            ? (MixerKind?)ConfigBinder.EnumNamed(typeof(MixerKind), name) : null).ToList();
        return mixers.Any(m => m is { } k && (ModelConfig.DeepRule(k) is not null || ModelConfig.IsTitansArchitecture(k)))
            && !mixers.Any(m => m is MixerKind.DeltaNet or MixerKind.LinearAttention);
    }

    /// <summary>model.compression_targets belonged to MAD's compression; it moves to the mad task (0 is dropped).</summary>
    static void MoveCompressionTargets(JsonObject root, string source)
    {
        if (root["model"] is not JsonObject model || model[CompressionTargets] is not { } targets) return;
        model.Remove(CompressionTargets);
        if (targets.GetValueKind() == System.Text.Json.JsonValueKind.Number && targets.GetValue<double>() == 0) return;
        if (root["task"] is not JsonObject task || task[Tasks.Key]?.GetValue<string>() != "mad")
            throw new ConfigException($"{source}: model.{CompressionTargets} is set, but only the \"mad\" task builds a compression " +
                $"decoder; write task.{CompressionTargets} in a mad task");
        task[CompressionTargets] = targets;
    }

    static JsonObject Tagged(string kind, JsonObject fields)
    {
        var tagged = new JsonObject { [Tasks.Key] = kind };
        foreach (var (key, value) in fields.ToList())
        {
            fields.Remove(key);
            tagged[TaskRenames.GetValueOrDefault((kind, key), key)] = value;
        }
        return tagged;
    }

    /// <summary>
    /// The new form of an old-form override, or null when it is not in the old form: "model.memory_depth=2" →
    /// "model.deep.depth=2", "passkey.test=[…]" → "task.test=[…]", "passkey={…}" → "task={"kind": "passkey", …}".
    /// </summary>
    public static string? ConvertOverride(string raw)
    {
        int eq = raw.IndexOf('=');
        if (eq <= 0) return null;
        string path = raw[..eq].Trim(), value = raw[(eq + 1)..].Trim();
        string[] parts = path.Split('.');
        if (parts.Length >= 2 && parts[0] == "model" && ModelMoves.TryGetValue(parts[1], out var to))
            return $"model.{to}{string.Concat(parts[2..].Select(p => "." + p))}={value}";
        if (parts.Length == 2 && parts[0] == "model" && parts[1] == CompressionTargets) return $"task.{CompressionTargets}={value}";
        if (!TaskSections.Contains(parts[0])) return null;
        if (parts.Length > 1)
            return $"task.{TaskRenames.GetValueOrDefault((parts[0], parts[1]), parts[1])}{string.Concat(parts[2..].Select(p => "." + p))}" +
                $"={value}";
        JsonObject? fields;
        try { fields = JsonNode.Parse(value) as JsonObject; }
        catch (System.Text.Json.JsonException) { fields = null; }
        return fields is null ? $"task={{\"kind\": \"{parts[0]}\", …}}" : $"task={Tagged(parts[0], fields).ToJsonString()}";
    }
}
