using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Tasks;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

public class ConfigTests
{
    static ConfigException Bad(string json, params string[] overrides) =>
        Assert.Throws<ConfigException>(() => RunConfig.Parse(json, "run.json", overrides));

    [Fact]
    public void Every_bundled_preset_loads_and_round_trips()
    {
        Assert.NotEmpty(RunConfig.Presets());
        foreach (var name in RunConfig.Presets())
        {
            var config = RunConfig.Load(name);
            var again = RunConfig.Parse(config.ToJson(), "round trip");
            Assert.Equal(config.ToJson(), again.ToJson());
        }
    }

    [Theory]
    [InlineData("titans", null, true)]                  // saved in the old form, when the deep memories gated by default
    [InlineData("titans_mag", null, true)]
    [InlineData("yaad", false, false)]
    [InlineData("gated_delta_net", null, null)]         // its default never changed
    [InlineData("delta_net", null, null)]
    public void A_run_saved_in_the_old_form_keeps_the_output_gate_it_was_trained_with(string mixer, bool? written, bool? loaded)
    {
        string gate = written is { } w ? $", \"output_gate\": {(w ? "true" : "false")}" : "";
        string old = "{\"model\": {\"mixer\": \"" + mixer + "\"" + gate + "}, \"task\": {}}";
        Assert.Equal(loaded, RunConfig.Parse(old, "config.json", savedRun: true).Model.OutputGate);
        // a run saved in the nested form means what it says: unset is the mechanism's own (now ungated) choice
        string now = "{\"model\": {\"mixer\": \"" + mixer + "\"" + gate + "}}";
        Assert.Equal(written, RunConfig.Parse(now, "config.json", savedRun: true).Model.OutputGate);
        // a deep layer beside an ungated one cannot have meant a gate for both: it loads as written
        const string hybrid = """{"model": {"num_layers": 2, "layer_mixers": ["titans", "delta_net"]}, "task": {}}""";
        Assert.Null(RunConfig.Parse(hybrid, "config.json", savedRun: true).Model.OutputGate);
    }

    [Fact]
    public void A_saved_run_keeps_the_deep_memory_step_it_was_trained_with()
    {
        // New configs get the normalised step (the default since issue 11); a run folder saved before the field was
        // always written omits it and was trained with plain steps, so loading it must not change the model.
        const string json = """{"model": {"mixer": "titans"}}""";
        Assert.True(RunConfig.Parse(json, "new.json").Model.Deep.NormalizedStep);
        Assert.False(RunConfig.Parse(json, "config.json", savedRun: true).Model.Deep.NormalizedStep);
        const string written = """{"model": {"deep": {"normalized_step": true}}}""";
        Assert.True(RunConfig.Parse(written, "config.json", savedRun: true).Model.Deep.NormalizedStep);
        Assert.Contains("\"normalized_step\": true", RunConfig.Parse(json, "new.json").ToJson());
        // The same rule for a run saved in the old flat form (LegacyConfig converts it).
        const string old = """{"model": {"mixer": "titans", "memory_depth": 1}, "task": {}}""";
        Assert.False(RunConfig.Parse(old, "config.json", savedRun: true).Model.Deep.NormalizedStep);
        Assert.True(RunConfig.Parse("""{"model": {"memory_normalized_step": true}, "task": {}}""", "config.json", savedRun: true)
            .Model.Deep.NormalizedStep);
    }

    [Theory]
    [InlineData("mqar-attention", "mqar")]
    [InlineData("passkey-gated-delta-net", "passkey")]
    [InlineData("set-disjointness", "set_disjointness")]
    [InlineData("induction-heads", "induction_heads")]
    [InlineData("parity-dms", "parity_dms")]
    [InlineData("fact-chains", "fact_chains")]
    [InlineData("state-tracking", "state_tracking")]
    public void Each_task_has_a_preset_that_validates_and_trains_on_it(string preset, string section)
    {
        var config = RunConfig.Load(preset);   // parses and validates
        Assert.Equal(section, config.TaskKind);
        Assert.NotEmpty(config.Description);
    }

    [Fact]
    public void Unknown_key_names_the_field_and_lists_allowed_ones()
    {
        var e = Bad("""{ "training": { "learning_rate": 0.1 } }""");
        Assert.Contains("\"training.learning_rate\"", e.Message);
        Assert.Contains("lr", e.Message);
        Assert.Contains("run.json", e.Message);
    }

    [Theory]
    [InlineData("""{ "training": { "lr": "fast" } }""", "training.lr", "a number")]
    [InlineData("""{ "training": { "steps": 1.5 } }""", "training.steps", "whole number")]
    [InlineData("""{ "model": { "positions": "alibi" } }""", "model.positions", "\"rope\"")]
    [InlineData("""{ "model": { "short_conv": 1 } }""", "model.short_conv", "true or false")]
    [InlineData("""{ "model": { "deep": { "objective": "l1" } } }""", "model.deep.objective", "\"l3\"")]
    [InlineData("""{ "model": { "deep": { "retention": "kl" } } }""", "model.deep.retention", "\"softmax\"")]
    [InlineData("""{ "task": { "kind": "mqar", "train": {} } }""", "task.train", "a list")]
    [InlineData("""{ "model": 3 }""", "model", "an object")]
    public void Wrong_type_names_the_field_and_the_expected_type(string json, string field, string expected)
    {
        var e = Bad(json);
        Assert.Contains($"\"{field}\"", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("""{ "training": { "lr": -1 } }""", "training.lr")]
    [InlineData("""{ "model": { "d_model": 0 } }""", "model.d_model")]
    [InlineData("""{ "training": { "target_accuracy": 1.5 } }""", "training.target_accuracy")]
    public void Out_of_range_value_names_the_field_and_the_range(string json, string field)
    {
        var e = Bad(json);
        Assert.Contains($"\"{field}\"", e.Message);
        Assert.Contains("out of range", e.Message);
    }

    [Theory]
    [InlineData("""{ "model": { "d_model": 64, "num_heads": 3 } }""", "model.num_heads")]
    [InlineData("""{ "task": { "kind": "mqar", "train_seed": 5, "test_seed": 5 } }""", "task.test_seed")]
    [InlineData("""{ "training": { "steps": 10, "warmup_steps": 20 } }""", "training.warmup_steps")]
    [InlineData("""{ "training": { "lr": 0 } }""", "training.lr")]
    [InlineData("""{ "model": { "mixer": "gla", "matrix": { "householder_steps": 2 } } }""", "model.matrix.householder_steps")]
    [InlineData("""{ "model": { "mixer": "mamba2", "matrix": { "mimo_rank": 4 } } }""", "model.matrix.mimo_rank")]
    public void Cross_field_rules_name_the_field(string json, string field) =>
        Assert.Contains($"\"{field}\"", Bad(json).Message);

    [Fact]
    public void Invalid_json_reports_the_line()
    {
        var e = Bad("{\n \"model\": { \"d_model\": 64,, }\n}");
        Assert.Contains("not valid JSON", e.Message);
        Assert.Contains("line 2", e.Message);
    }

    [Theory]
    [InlineData("""{ "model": {}, "model": {} }""", "Duplicate property 'model'")]
    [InlineData("""{ "task": { "kind": "mad" }, "task": { "kind": "selective_copying" } }""", "Duplicate property 'task'")]   // one task
    [InlineData("""{ "training": { "lr": 1e-3, "lr": 1e-2 } }""", "Duplicate property 'lr'")]
    [InlineData("""{ "task": { "kind": "mqar", "train": null } }""", "field \"task.train\": null is not allowed")]
    [InlineData("""{ "model": null }""", "field \"model\": null is not allowed")]
    [InlineData("""{ "task": { "kind": "mqar", "train": [null] } }""", "task.train[0]")]
    public void Duplicate_keys_and_misplaced_nulls_are_config_errors(string json, string expected) =>
        Assert.Contains(expected, Bad(json).Message);

    [Fact]
    public void A_null_optional_task_section_means_absent() =>
        Assert.IsType<MqarConfig>(RunConfig.Parse("""{ "passkey": null, "task": {} }""", "config.json", [], savedRun: true).Task);

    [Fact]
    public void An_object_set_on_a_section_changes_only_the_fields_it_names()
    {
        var c = RunConfig.Parse("""{ "training": { "steps": 300, "warmup_steps": 10 } }""", "run.json", ["""training={"lr":1e-3}"""]);
        Assert.Equal(1e-3, c.Training.Lr);
        Assert.Equal(300, c.Training.Steps);
        Assert.Equal(10, c.Training.WarmupSteps);
        Assert.Contains("given twice", Bad("{}", """training={"lr":1,"lr":2}""").Message);
    }

    [Fact]
    public void Overrides_set_single_fields_with_json_values()
    {
        var c = RunConfig.Parse("{}", "run.json", ["training.lr=3e-4", "model.positions=learned", "model.short_conv=false",
            "task.train_seed=9"]);
        Assert.Equal(3e-4, c.Training.Lr);
        Assert.Equal(PositionKind.Learned, c.Model.Positions);
        Assert.False(c.Model.ShortConv);
        Assert.Equal(9, Assert.IsType<MqarConfig>(c.Task).TrainSeed);
    }

    [Fact]
    public void A_bracketed_list_of_bare_words_is_a_list_as_the_shell_passes_it()
    {
        var c = RunConfig.Parse("{}", "run.json", ["model.num_layers=2", "model.layer_mixers=[gated_delta_net, attention]"]);
        Assert.Equal([MixerKind.GatedDeltaNet, MixerKind.Attention], c.Model.LayerMixers);
        Assert.Contains("model.layer_mixers", Bad("{}", "model.layer_mixers=[gated_delta_net, nothing]").Message);
    }

    [Theory]
    [InlineData("training.learning_rate=1", "training.learning_rate")]
    [InlineData("training.lr", "FIELD=VALUE")]
    [InlineData("training.lr.x=1", "not a section")]
    [InlineData("training.lr=-5", "out of range")]
    public void Bad_overrides_are_clear_errors(string over, string expected) =>
        Assert.Contains(expected, Bad("{}", over).Message);

    [Fact]
    public void A_directory_as_config_is_named_as_such()
    {
        using var dir = new Tmp.Dir();
        Assert.Contains("is a directory, not a config file", Assert.ThrowsAny<MnemoException>(() => RunConfig.Load(dir.Path)).Message);
    }

    [Fact]
    public void Missing_config_file_names_the_presets()
    {
        var e = Assert.Throws<ConfigException>(() => RunConfig.Load("/nonexistent/run.json"));
        Assert.Contains("no such file", e.Message);
        Assert.Contains("mqar-attention", e.Message);
    }
}
