using System.Text.Json.Nodes;
using Mnemo.Interop;
using Mnemo.IO;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using Mnemo.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Interop;

/// <summary>
/// fla checkpoints in and out (docs/interop.md). The fixtures were written by scripts/fla-fixtures/make_fixtures.py:
/// tiny checkpoints in fla's exact layout, with the logits an independent PyTorch implementation computed for fixed
/// input ids in float64.
/// </summary>
public class FlaCheckpointTests
{
    public static readonly TheoryData<string> Fixtures =
        new()
        {
            "gated-deltanet", "gated-deltanet-bf16-sharded", "gated-deltanet-init-scale", "gated-deltanet-hybrid", "delta-net", "gla",
            "gla-conv-ungated", "gated-deltanet-neg-eigval", "gated-deltaproduct", "deltaproduct-3", "kda", "kda-hybrid", "mamba2",
            "mamba2-hf-bf16",
        };

    static string Fixture(string name) => Path.Combine(Repository.Root, "tests", "Mnemo.Tests", "Fixtures", "fla", name);

    static (Tensor Ids, Tensor Logits) Reference(string name)
    {
        var file = SafeTensors.Read(Path.Combine(Fixture(name), "reference.safetensors"));
        return (TensorIO.ToTensor(file["input_ids"]).unsqueeze(0), TensorIO.ToTensor(file["logits"]).unsqueeze(0));   // [1, T], [1, T, V]
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Imported_logits_equal_the_independent_pytorch_reference(string name)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Initialise();
        var (_, model) = FlaCheckpoint.Read(Fixture(name));
        using var owned = model;
        var (ids, expected) = Reference(name);
        using var noGrad = no_grad();
        double error = Equivalence.RelativeRms(model.forward(ids), expected);
        Assert.True(error <= 1e-5, $"{name}: logits at relative RMS {error:E2} from the reference");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Streaming_decode_of_an_imported_model_equals_its_full_forward(string name)
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Initialise();
        var (config, model) = FlaCheckpoint.Read(Fixture(name));
        using var owned = model;
        var (ids, _) = Reference(name);
        using var noGrad = no_grad();
        var full = model.forward(ids);
        using var cache = new ModelCache(config.NumLayers);
        var steps = Enumerable.Range(0, (int)ids.shape[1]).Select(t => model.Step(ids.narrow(1, t, 1), cache)).ToArray();
        double error = Equivalence.RelativeRms(cat(steps, 1), full);
        Assert.True(error <= 1e-5, $"{name}: token-by-token logits at relative RMS {error:E2} from the full forward");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Export_then_import_round_trips_bit_exactly(string name)
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        string checkpoint = FlaCheckpoint.Import(Fixture(name), dir["run"], TokenizerKind.Bytes);
        FlaCheckpoint.Export(checkpoint, dir["fla"]);
        var (config, original) = FlaCheckpoint.Read(Fixture(name));
        var (again, exported) = FlaCheckpoint.Read(dir["fla"]);
        using var o = original;
        using var e = exported;
        Assert.Equal(ConfigBinder.ToJson(config), ConfigBinder.ToJson(again));
        var before = original.state_dict();
        foreach (var (key, value) in exported.state_dict())
            Assert.True(value.eq(before[key]).all().item<bool>(), $"{key} changed in the round trip");
        // The exported config holds only keys fla's own config writes for the model, nothing Mnemo-specific. Export writes
        // fla's Mamba2 keys, so the Hugging Face-dialect fixture is compared with fla's.
        var json = JsonNode.Parse(File.ReadAllText(dir["fla/config.json"]))!.AsObject();
        string dialect = name.StartsWith("mamba2", StringComparison.Ordinal) ? "mamba2" : name;
        var source = HfConfigKeys.Parse(File.ReadAllText(Path.Combine(Fixture(dialect), "config.json")))!.AsObject();
        Assert.Empty(json.Select(kv => kv.Key).Except(source.Select(kv => kv.Key)));
        Assert.Equal(source["model_type"]!.GetValue<string>(), json["model_type"]!.GetValue<string>());
    }

    [Fact]
    public void Every_config_key_mnemo_cannot_honour_is_named_at_once()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture("gated-deltanet"), "config.json")))!.AsObject();
        config["allow_neg_eigval"] = "yes";
        config["num_v_heads"] = 4;
        config["use_short_conv"] = false;
        config["mystery_scale"] = 2.5;
        config["attn"] = new JsonObject { ["layers"] = new JsonArray(1, 7), ["num_heads"] = 4, ["qkv_bias"] = true };
        var e = Assert.Throws<MnemoException>(() => FlaConfig.FromHf(config, "config.json"));
        string[] named =
        [
            "\"allow_neg_eigval\" is \"yes\", expected a boolean", "\"num_v_heads\": 4", "\"use_short_conv\": false", "\"mystery_scale\"",
            "\"attn.num_heads\": 4", "\"attn.qkv_bias\": true", "\"attn.layers\": 7 is not a layer index below 2",
        ];
        foreach (var key in named)
            Assert.Contains(key, e.Message);
        config = new JsonObject { ["model_type"] = "mamba" };
        Assert.Contains("model_type \"mamba\" is not one Mnemo imports",
            Assert.Throws<MnemoException>(() => FlaConfig.FromHf(config, "config.json")).Message);
    }

    [Fact]
    public void Every_mamba2_key_mnemo_cannot_honour_is_named_at_once()
    {
        var text = File.ReadAllText(Path.Combine(Fixture("mamba2"), "config.json"));
        Assert.Contains("Infinity", text);                                    // as Python's json module writes ∞
        var config = HfConfigKeys.Parse(text)!.AsObject();
        config["n_groups"] = 8;
        config["dt_limit"] = new JsonArray(0.001, 0.1);
        config["use_bias"] = true;
        config["num_heads"] = 5;
        config["norm_before_gate"] = true;
        config["D_has_hdim"] = true;
        config["mystery_scale"] = 2.5;
        var e = Assert.Throws<MnemoException>(() => FlaConfig.FromHf(config, "config.json"));
        string[] named =
        [
            "\"n_groups\": 8", "\"dt_limit\": [0.001,0.1]", "\"use_bias\": true", "\"num_heads\": 5 (expand · hidden_size / head_dim is 4",
            "\"norm_before_gate\": true", "\"D_has_hdim\": true", "\"mystery_scale\"",
        ];
        foreach (var key in named)
            Assert.Contains(key, e.Message);
        // Hugging Face's dialect: its keys, its default of 8 groups when n_groups is absent.
        config = HfConfigKeys.Parse(File.ReadAllText(Path.Combine(Fixture("mamba2-hf-bf16"), "config.json")))!.AsObject();
        config.Remove("n_groups");
        config["time_step_limit"] = new JsonArray(0.0, 1.0);
        e = Assert.Throws<MnemoException>(() => FlaConfig.FromHf(config, "config.json"));
        Assert.Contains("\"n_groups\": 8", e.Message);
        Assert.Contains("\"time_step_limit\": [0,1]", e.Message);
    }

    [Fact]
    public void Python_non_finite_numbers_in_config_json_are_read_and_strings_are_left_alone()
    {
        var json = HfConfigKeys.Parse("""{"a": [0.0, Infinity, -Infinity, NaN], "b": "Infinity NaN \" -Infinity", "c": 1}""")!;
        var a = json["a"]!.AsArray();
        Assert.Equal([0.0, double.PositiveInfinity, double.NegativeInfinity], a.Take(3).Select(n => HfConfigKeys.Number(n)!.Value));
        Assert.True(double.IsNaN(HfConfigKeys.Number(a[3])!.Value));
        Assert.Equal("Infinity NaN \" -Infinity", json["b"]!.GetValue<string>());
        Assert.Null(HfConfigKeys.Number(json["b"]));
        Assert.Equal(1, HfConfigKeys.Number(json["c"]));
    }

    [Fact]
    public void Weights_that_do_not_match_are_named_and_nothing_is_written()
    {
        using var dir = new Tmp.Dir();
        TorchRuntime.Initialise();
        string broken = dir["broken"];
        Directory.CreateDirectory(broken);
        File.Copy(Path.Combine(Fixture("gated-deltanet"), "config.json"), Path.Combine(broken, "config.json"));
        var file = SafeTensors.Read(Path.Combine(Fixture("gated-deltanet"), "model.safetensors"));
        var tensors = file.Tensors.Where(t => t.Name != "model.norm.weight").ToList();
        int at = tensors.FindIndex(t => t.Name == "model.layers.0.attn.A_log");
        tensors[at] = tensors[at] with { Shape = [1, 2] };
        tensors.Add(tensors[0] with { Name = "model.layers.0.attn.extra" });
        SafeTensors.Write(Path.Combine(broken, "model.safetensors"), tensors);
        var e = Assert.Throws<MnemoException>(() => FlaCheckpoint.Import(broken, dir["run"], TokenizerKind.Bytes));
        Assert.Contains("missing \"model.norm.weight\"", e.Message);
        Assert.Contains("unexpected \"model.layers.0.attn.extra\"", e.Message);
        Assert.Contains("\"model.layers.0.attn.A_log\" has shape [1, 2], the config makes it [2]", e.Message);
        Assert.False(Directory.Exists(dir["run"]));

        string sharded = dir["sharded"];
        Directory.CreateDirectory(sharded);
        foreach (var f in Directory.GetFiles(Fixture("gated-deltanet-bf16-sharded")))
            File.Copy(f, Path.Combine(sharded, Path.GetFileName(f)));
        File.Delete(Path.Combine(sharded, "model-00002-of-00002.safetensors"));
        Assert.Contains("shard model-00002-of-00002.safetensors is missing",
            Assert.Throws<MnemoException>(() => FlaCheckpoint.Read(sharded)).Message);
    }
}
