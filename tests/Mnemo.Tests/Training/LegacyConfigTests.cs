using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Memory.Deep;
using Mnemo.Runtime;
using Mnemo.Sweeps;
using Mnemo.Tasks;
using Mnemo.Tasks.Mad;
using Mnemo.Training;

namespace Mnemo.Tests.Training;

/// <summary>The old flat config form (docs/cli.md#the-old-flat-form): refused in a config file or override with the
/// conversion spelled out, converted when a saved run or sweep folder is read.</summary>
[Collection(TorchCollection.Name)]
public class LegacyConfigTests
{
    /// <summary>configs/passkey-gated-delta-net.json as it was bundled before the task union.</summary>
    const string OldPreset = """
        {
          "description": "2-layer Gated DeltaNet on passkey retrieval",
          "model": { "mixer": "gated_delta_net", "d_model": 64, "num_layers": 2, "num_heads": 2, "mlp_ratio": 0 },
          "passkey": {
            "vocab_size": 64, "num_digits": 5,
            "train": [ { "seq_len": 64, "num_examples": 8000, "depths": "uniform" } ],
            "test": [ { "seq_len": 64, "num_examples": 500, "depths": "even" } ]
          },
          "training": { "steps": 1000, "lr": 3e-3 }
        }
        """;

    /// <summary>A run folder's config.json as an older build wrote it: every family's field flat in model, the inactive
    /// MQAR section beside the active passkey section.</summary>
    const string OldSaved = """
        {
          "description": "",
          "model": {
            "mixer": "titans_mag", "layer_mixers": ["titans_mag", "mom"], "vocab_size": 0, "d_model": 16, "num_layers": 2,
            "num_heads": 2, "positions": "rope", "max_positions": 2048, "window": 4, "short_conv": true, "conv_size": 4,
            "expand_k": 1, "expand_v": 1, "feature_map": "elu_p1", "normalize": false, "chunk_size": 8, "output_gate": null,
            "dt_min": 0.001, "dt_max": 0.1, "num_memories": 3, "top_k": 1, "shared_memory": false, "mom_rule": "delta_net",
            "router_aux_loss_coef": 0.02, "memory_depth": 1, "memory_expansion": 4, "memory_activation": "silu",
            "memory_residual_norm": false, "memory_chunk_size": 4, "memory_max_lr": 0.5, "memory_forget_bias": -4,
            "memory_gate_pooling": "chunk", "memory_grad_clip": 0, "memory_window": 0, "memory_learner": "rule",
            "memory_feature_map": "none", "persistent_tokens": 2, "segment_size": 8, "mlp_ratio": 0, "tie_embeddings": false,
            "norm_eps": 1e-05, "init_std": 0.02
          },
          "task": { "vocab_size": 512, "train_seed": 1, "test_seed": 2 },
          "passkey": {
            "vocab_size": 40, "train_seed": 3, "test_seed": 4,
            "train": [ { "seq_len": 32, "num_examples": 4 } ], "test": [ { "seq_len": 32, "num_examples": 4 } ]
          },
          "training": { "steps": 4, "warmup_steps": 1 }
        }
        """;

    /// <summary>What <see cref="OldSaved"/> means, written in code.</summary>
    static RunConfig Expected() => new()
    {
        Model = new ModelConfig
        {
            Mixer = MixerKind.TitansMag, LayerMixers = [MixerKind.TitansMag, MixerKind.Mom], DModel = 16, NumLayers = 2, MlpRatio = 0,
            OutputGate = true,                                              // absent from an old saved config: deep memories gated
            Attention = new() { Window = 4 },
            Matrix = new() { ChunkSize = 8 },
            Mom = new() { NumMemories = 3, TopK = 1, SharedMemory = false, Rule = MomRule.DeltaNet, RouterAuxLossCoef = 0.02 },
            Deep = new()
            {
                Depth = 1, Activation = MemoryActivation.Silu, ChunkSize = 4, GatePooling = GatePooling.Chunk,
                NormalizedStep = false,                                     // absent from a saved config: the plain step
            },
            Titans = new() { PersistentTokens = 2, SegmentSize = 8 },
        },
        Task = new PasskeyConfig
        {
            VocabSize = 40, TrainSeed = 3, TestSeed = 4,
            Train = [new() { SeqLen = 32, NumExamples = 4 }], Test = [new() { SeqLen = 32, NumExamples = 4 }],
        },
        Training = new TrainingConfig { Steps = 4, WarmupSteps = 1 },
    };

    [Fact]
    public void An_old_preset_is_one_error_that_says_how_to_convert_it()
    {
        var e = Assert.Throws<ConfigException>(() => RunConfig.Parse(OldPreset, "old.json"));
        Assert.StartsWith("old.json: passkey is the old flat form: write \"task\": {\"kind\": \"passkey\"", e.Message);
        Assert.Contains("docs/cli.md#the-old-flat-form", e.Message);
    }

    [Theory]
    [InlineData("""{ "model": { "memory_depth": 2 } }""", "model.memory_depth is the old flat form: write model.deep.depth")]
    [InlineData("""{ "model": { "mom_rule": "delta_net" } }""", "model.mom_rule is the old flat form: write model.mom.rule")]
    [InlineData("""{ "model": { "window": 8 } }""", "model.window is the old flat form: write model.attention.window")]
    [InlineData("""{ "model": { "segment_size": 8 } }""", "model.segment_size is the old flat form: write model.titans.segment_size")]
    [InlineData("""{ "model": { "compression_targets": 8 } }""", "write task.compression_targets")]
    [InlineData("""{ "task": { "vocab_size": 256 } }""", "task is the old flat form: write \"task\": {\"kind\": \"mqar\"")]
    [InlineData("""{ "model": { "chunk_size": 8, "memory_window": 2 } }""",
        "model.chunk_size is the old flat form: write model.matrix.chunk_size; also model.memory_window → model.deep.window")]
    public void Each_old_field_is_named_with_its_new_place(string json, string expected) =>
        Assert.Contains(expected, Assert.Throws<ConfigException>(() => RunConfig.Parse(json, "run.json")).Message);

    [Theory]
    [InlineData("model.memory_depth=1", "write model.deep.depth=1")]
    [InlineData("passkey.test_seed=7", "write task.test_seed=7")]
    [InlineData("parity_dms.kind=dms", "write task.variant=dms")]
    [InlineData("""passkey={"num_digits":3}""", """write task={"kind":"passkey","num_digits":3}""")]
    public void An_old_override_is_an_error_with_the_new_one(string set, string expected) =>
        Assert.Contains(expected, Assert.Throws<ConfigException>(() => RunConfig.Parse("{}", "run.json", [set])).Message);

    [Fact]
    public void An_old_saved_run_loads_as_the_same_config_and_builds_the_same_model()
    {
        using var dir = new Tmp.Dir();
        string path = Path.Combine(dir.Path, Checkpoint.ConfigFile);
        File.WriteAllText(path, OldSaved);
        var loaded = RunConfig.LoadSaved(path);
        Assert.Equal(Expected().ToJson(), loaded.ToJson());

        // Same parameters, names (the checkpoint's tensor names) and values from the same seed.
        TorchRuntime.Seed(3);
        using var old = loaded.NewModel();
        TorchRuntime.Seed(3);
        using var now = Expected().NewModel();
        var a = old.named_parameters().ToList();
        var b = now.named_parameters().ToList();
        Assert.Equal(b.Select(p => p.name), a.Select(p => p.name));
        foreach (var ((name, x), (_, y)) in a.Zip(b)) Assert.True(x.allclose(y, rtol: 0, atol: 0), name);
        Assert.Contains(a, p => p.name.Contains("persistent_memory"));
    }

    [Fact]
    public void Old_saved_task_sections_convert_with_their_renamed_fields()
    {
        var parity = RunConfig.Parse("""{ "task": {}, "parity_dms": { "kind": "dms", "n": 3 } }""", "config.json", savedRun: true);
        Assert.Equal(BitTaskKind.Dms, Assert.IsType<ParityDmsConfig>(parity.Task).Variant);
        var mad = RunConfig.Parse("""{ "model": { "compression_targets": 40 }, "task": {}, "mad": { "task": "compression" } }""",
            "config.json", savedRun: true);
        Assert.Equal(40, Assert.IsType<MadConfig>(mad.Task).CompressionTargets);
        var mqar = RunConfig.Parse("""{ "model": { "compression_targets": 0 }, "task": { "vocab_size": 256 } }""", "config.json",
            savedRun: true);
        Assert.Equal(256, Assert.IsType<MqarConfig>(mqar.Task).VocabSize);
    }

    [Fact]
    public void Configs_are_written_in_the_new_form()
    {
        string json = Expected().ToJson();
        Assert.Contains("\"kind\": \"passkey\"", json);
        Assert.Contains("\"deep\": {", json);
        Assert.DoesNotContain("memory_depth", json);
        Assert.DoesNotContain("\"passkey\": {", json);
        Assert.Equal(json, RunConfig.Parse(json, "round trip").ToJson());
    }

    [Fact]
    public void An_old_saved_sweep_converts_to_the_runs_of_its_new_form()
    {
        const string axes = """
            "axes": [ { "name": "task", "values": [
              { "name": "mqar", "set": [ "model.memory_depth=1" ], "final_eval": [ "task.test_seed=9" ] },
              { "name": "passkey", "set": [ "passkey={\"vocab_size\":40,\"train\":[{\"seq_len\":32}],\"test\":[{\"seq_len\":32}]}" ],
                "final_eval": [ "passkey.test_seed=9" ] } ] } ],
            """;
        string old = "{ \"name\": \"s\", \"base\": { \"model\": { \"mixer\": \"titans\", \"memory_chunk_size\": 4 }, \"task\": {} }, " +
            axes + " \"learning_rates\": [0.01] }";
        string now = "{ \"name\": \"s\", \"base\": { \"model\": { \"mixer\": \"titans\", \"output_gate\": true, " +
            "\"deep\": { \"chunk_size\": 4 } } }, " +
            axes.Replace("model.memory_depth", "model.deep.depth").Replace("passkey={", "task={\\\"kind\\\":\\\"passkey\\\",")
                .Replace("passkey.test_seed", "task.test_seed") + " \"learning_rates\": [0.01] }";
        Assert.Contains("the old flat form", Assert.Throws<ConfigException>(() => SweepConfig.Parse(old, "old.json")).Message);
        var converted = SweepConfig.ParseSaved(old, "sweep.json").Runs();
        var expected = SweepConfig.Parse(now, "new.json").Runs();
        static string Json(SweepRun r) => r.Config.ToJson() + r.FinalEval?.ToJson();
        Assert.Equal(expected.Select(Json), converted.Select(Json));
        Assert.IsType<PasskeyConfig>(converted[1].Config.Task);
    }

    [Fact]
    public void The_task_kind_changes_alone_or_with_the_whole_task()
    {
        Assert.IsType<PasskeyConfig>(RunConfig.Parse("{}", "run.json", ["task.kind=passkey"]).Task);
        var e = Assert.Throws<ConfigException>(() =>
            RunConfig.Parse("""{ "task": { "kind": "mqar", "vocab_size": 256 } }""", "run.json", ["task.kind=passkey"]));
        Assert.Contains("give the whole task instead", e.Message);
        var whole = RunConfig.Parse("""{ "task": { "kind": "mqar", "vocab_size": 256 } }""", "run.json",
            ["""task={"kind":"passkey","num_digits":3}""", "task.test_seed=9"]);
        var passkey = Assert.IsType<PasskeyConfig>(whole.Task);
        Assert.Equal((3, 9), (passkey.NumDigits, passkey.TestSeed));
        var same = RunConfig.Parse("""{ "task": { "kind": "mqar", "vocab_size": 256 } }""", "run.json", ["""task={"test_seed":9}"""]);
        Assert.Equal((256, 9), (((MqarConfig)same.Task).VocabSize, ((MqarConfig)same.Task).TestSeed));
        Assert.Contains("\"task.kind\"", Assert.Throws<ConfigException>(() =>
            RunConfig.Parse("""{ "task": { "kind": "copying" } }""", "run.json")).Message);
        Assert.Contains("needs \"kind\"", Assert.Throws<ConfigException>(() =>
            RunConfig.Parse("{}", "run.json", ["""task={"vocab_size":256}"""])).Message);
    }
}
