using System.Text;
using System.Text.Json.Nodes;
using Mnemo.Training;
using Xunit.Abstractions;

namespace Mnemo.Tests.Faults;

/// <summary>
/// Fault injection for configs: seeded mutations of every bundled preset (values of the wrong type, out of range or
/// non-finite, nulls, unknown and duplicated keys, deleted fields, deep nesting, broken text) and of --set overrides.
/// Each must load or end in one single-line MnemoException; any other exception is a defect.
/// </summary>
public sealed class ConfigMutationTests(ITestOutputHelper output)
{
    static readonly JsonNode?[] Values =
    [
        null, -1, 0, 1e308, -1e308, 2147483648, 0.5, "", "x", true, new JsonArray(), new JsonObject(), new JsonArray(1, "a", null),
    ];

    /// <summary>Every (object, key) pair in the tree.</summary>
    static List<(JsonObject Parent, string Key)> Slots(JsonNode node)
    {
        var slots = new List<(JsonObject, string)>();
        void Walk(JsonNode? n)
        {
            if (n is JsonObject o)
                foreach (var (k, v) in o.ToList()) { slots.Add((o, k)); Walk(v); }
            else if (n is JsonArray a)
                foreach (var v in a) Walk(v);
        }
        Walk(node);
        return slots;
    }

    static string Mutate(string text, Random rng)
    {
        var root = JsonNode.Parse(text)!;
        var slots = Slots(root);
        var (parent, key) = slots[rng.Next(slots.Count)];
        switch (rng.Next(7))
        {
            case 0: parent[key] = Values[rng.Next(Values.Length)]?.DeepClone(); break;                 // wrong type / range
            case 1: parent.Remove(key); break;                                                         // missing field
            case 2: parent["no_such_" + key] = 1; break;                                               // unknown key
            case 3:                                                                                    // duplicated key
                string json = root.ToJsonString();
                int at = json.IndexOf($"\"{key}\":", StringComparison.Ordinal);
                return at < 0 ? json : json.Insert(at, $"\"{key}\":1,");
            case 4:                                                                                    // deep nesting
                parent[key] = "__deep__";
                return root.ToJsonString().Replace("\"__deep__\"", new string('[', 2000) + new string(']', 2000), StringComparison.Ordinal);
            case 5:                                                                                    // broken text
                var chars = root.ToJsonString().ToCharArray();
                chars[rng.Next(chars.Length)] = "{}[],:\"0-e"[rng.Next(10)];
                return new string(chars);
            default: parent[key] = rng.Next(2) == 0 ? double.MaxValue : -0.0; break;                  // extremes
        }
        return root.ToJsonString();
    }

    [Fact]
    public void Every_mutated_preset_loads_or_is_one_clear_error()
    {
        int loaded = 0, refused = 0;
        var rng = new Random(13);
        foreach (var preset in RunConfig.Presets())
        {
            string text = RunConfig.PresetText(preset);
            for (int i = 0; i < 200; i++)
            {
                string mutated = Mutate(text, rng);
                try
                {
                    RunConfig.Parse(mutated, "run.json", []);
                    loaded++;
                }
                catch (MnemoException e)
                {
                    Assert.DoesNotContain('\n', e.Message);
                    refused++;
                }
                catch (Exception e)
                {
                    Assert.Fail($"{preset} mutation {i}: {e.GetType().Name}: {e.Message}\n{mutated[..Math.Min(400, mutated.Length)]}");
                }
            }
        }
        output.WriteLine($"{refused} refused with a clear error, {loaded} loaded");
        Assert.True(refused > loaded, $"{refused} refused, {loaded} loaded: the mutations are too gentle to test anything");
    }

    [Fact]
    public void Every_mutated_override_loads_or_is_one_clear_error()
    {
        var rng = new Random(17);
        string[] paths =
            ["training.lr", "training", "model.d_model", "model", "task.train", "task", "model.mixer", "nope.x", "training.lr.x", ""];
        string[] values = ["1", "-1", "NaN", "1e999", "null", "{}", "[]", "{\"lr\":1,\"lr\":2}", "\"x\"", "[[[[", "{\"steps\":0}", ""];
        for (int i = 0; i < 1000; i++)
        {
            string over = $"{paths[rng.Next(paths.Length)]}{(rng.Next(8) == 0 ? "" : "=")}{values[rng.Next(values.Length)]}";
            try { RunConfig.Parse("{}", "run.json", [over]); }
            catch (MnemoException e) { Assert.DoesNotContain('\n', e.Message); }
            catch (Exception e) { Assert.Fail($"--set {over}: {e.GetType().Name}: {e.Message}"); }
        }
    }
}
