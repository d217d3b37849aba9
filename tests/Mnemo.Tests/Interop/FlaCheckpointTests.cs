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
            "gla-conv-ungated",
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
        // The exported config holds every key fla's own config writes for the model, and nothing Mnemo-specific.
        var json = JsonNode.Parse(File.ReadAllText(dir["fla/config.json"]))!.AsObject();
        var source = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture(name), "config.json")))!.AsObject();
        Assert.Empty(json.Select(kv => kv.Key).Except(source.Select(kv => kv.Key)));
        Assert.Equal(source["model_type"]!.GetValue<string>(), json["model_type"]!.GetValue<string>());
    }

    [Fact]
    public void Every_config_key_mnemo_cannot_honour_is_named_at_once()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture("gated-deltanet"), "config.json")))!.AsObject();
        config["allow_neg_eigval"] = true;
        config["num_v_heads"] = 4;
        config["use_short_conv"] = false;
        config["mystery_scale"] = 2.5;
        config["attn"] = new JsonObject { ["layers"] = new JsonArray(1, 7), ["num_heads"] = 4, ["qkv_bias"] = true };
        var e = Assert.Throws<MnemoException>(() => FlaConfig.FromHf(config, "config.json"));
        string[] named =
        [
            "\"allow_neg_eigval\": true", "\"num_v_heads\": 4", "\"use_short_conv\": false", "\"mystery_scale\"",
            "\"attn.num_heads\": 4", "\"attn.qkv_bias\": true", "\"attn.layers\": 7 is not a layer index below 2",
        ];
        foreach (var key in named)
            Assert.Contains(key, e.Message);
        config = new JsonObject { ["model_type"] = "mamba2" };
        Assert.Contains("model_type \"mamba2\" is not one Mnemo imports",
            Assert.Throws<MnemoException>(() => FlaConfig.FromHf(config, "config.json")).Message);
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
