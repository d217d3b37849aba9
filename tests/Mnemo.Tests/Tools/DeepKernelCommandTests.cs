using Mnemo.IO;
using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using Mnemo.Tests.Cli;
using Mnemo.Tests.Memory;
using Mnemo.Tools;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Tools;

/// <summary>
/// `mnemo kernel` with the deep rules: a safetensors file in, o, the final state and the gradients out. Every result
/// is compared with a direct <see cref="DeepKernels.Run"/> plus autograd on the same tensors. Tiny shapes.
/// </summary>
[Collection(TorchCollection.Name)]
public class DeepKernelCommandTests
{
    const long B = 2, T = 7, H = 2, D = 4, Hidden = 6;
    const int Depth = 2, Chunk = 3;

    static MemoryMlp Mlp(bool residual = false, MemoryActivation activation = MemoryActivation.Gelu) =>
        new(D, D, Depth, Hidden, activation, residual);

    /// <summary>Seeded fp64 inputs as a file holds them: the rule's gates, w0.&lt;l&gt;, do and a cotangent for every state
    /// tensor.</summary>
    static Dictionary<string, Tensor> Inputs(DeepMemoryRule rule, int seed, MemoryMlp? mlp = null)
    {
        mlp ??= Mlp();
        using var leaves = DeepKernelTests.Inputs(rule, mlp, B, T, H, seed);
        var x = leaves.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var gen = new Generator((ulong)seed + 500);
        x["do"] = randn([B, T, H, D], float64, generator: gen);
        using (no_grad())
        {
            var (_, state) = DeepKernels.Run(rule, mlp, KernelForm.Chunk, DeepKernelTests.Of(leaves, mlp.Depth), Chunk);
            foreach (var (name, s) in state.Tensors()) x["d" + name] = randn(s.shape, float64, generator: gen);
        }
        return x;
    }

    static void Write(string path, IReadOnlyDictionary<string, Tensor> x) =>
        SafeTensors.Write(path, x.Select(kv => TensorIO.ToEntry(kv.Key, kv.Value)));

    static Dictionary<string, Tensor> Read(string path) =>
        SafeTensors.Read(path).Tensors.ToDictionary(e => e.Name, TensorIO.ToTensor);

    /// <summary>The expected outputs: DeepKernels.Run on leaves and the gradients of sum(o·do) + Σ sum(state·dstate).</summary>
    static Dictionary<string, Tensor> Reference(DeepMemoryRule rule, MemoryMlp mlp, Dictionary<string, Tensor> x,
        KernelForm form = KernelForm.Chunk, int chunk = Chunk)
    {
        var leaves = new Equivalence.Leaves();
        foreach (var (name, t) in x.Where(kv => kv.Key == "delta" || !kv.Key.StartsWith('d')))   // not the cotangents
            leaves.Tensors[name] = t.detach().clone().requires_grad_(true);
        var (o, state) = DeepKernels.Run(rule, mlp, form, DeepKernelTests.Of(leaves, mlp.Depth), chunk);
        var expected = new Dictionary<string, Tensor> { ["o"] = o.detach() };
        var loss = (o * x["do"]).sum();
        foreach (var (name, s) in state.Tensors())
        {
            expected[name] = s.detach();
            if (x.TryGetValue("d" + name, out var cotangent)) loss = loss + (s * cotangent).sum();
        }
        loss.backward();
        foreach (var (name, leaf) in leaves.Tensors) expected["d" + name] = leaf.grad!.detach().clone();
        return expected;
    }

    static void AssertOutputs(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, double tolerance, string label)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        var failures = new List<string>();
        foreach (var (name, e) in expected)
        {
            Assert.Equal(e.shape, actual[name].shape);
            double err = Equivalence.RelativeRms(actual[name], e);
            if (!(err <= tolerance)) failures.Add($"{name}: relative RMS {err:E2} > {tolerance:E0}");
        }
        Assert.True(failures.Count == 0, $"{label}: {string.Join("; ", failures)}");
    }

    public static TheoryData<string> Rules => [.. DeepMemoryRule.Named.Keys];

    [Theory]
    [MemberData(nameof(Rules))]
    public void Outputs_state_and_gradients_equal_the_kernel_with_autograd(string name)
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var rule = DeepMemoryRule.Named[name];
        var x = Inputs(rule, seed: 7 + name.Length);
        Write(dir["in.safetensors"], x);
        var result = DeepKernelFile.Run(dir["in.safetensors"], dir["out.safetensors"],
            new DeepKernelRunOptions(name, ChunkSize: Chunk, Hidden: Hidden, Backward: true));

        // o, the state in DeepState.Tensors() order, then d + every input in q, k, v, gates, w0.<l> order.
        var names = result.Outputs.Select(e => e.Name).ToList();
        Assert.Equal("o", names[0]);
        Assert.Equal(new[] { "w0", "w0_chunk_start" }, names.Skip(1).Take(2));
        Assert.Equal(rule.Learner.HasMomentum, names.Contains("s1"));
        Assert.Equal(rule.Window > 1, names.Contains("window_k"));
        Assert.Equal(new[] { "dq", "dk", "dv", "dtheta" }, names.SkipWhile(n => n != "dq").Take(4));
        Assert.Equal(new[] { "dw0.0", "dw0.1" }, names.TakeLast(2));
        var file = SafeTensors.Read(dir["out.safetensors"]);
        Assert.Equal(name, file.Metadata["rule"]);
        Assert.Equal("2", file.Metadata["depth"]);
        Assert.Equal(rule.Window.ToString(), file.Metadata["window"]);
        Assert.All(file.Tensors, e => Assert.Equal(SafeTensorDType.F64, e.DType));
        AssertOutputs(Reference(rule, Mlp(), x), Read(dir["out.safetensors"]), 1e-12, name);
    }

    [Theory]
    [InlineData("titans")]
    [InlineData("atlas")]
    public void Naive_and_step_forms_agree_with_the_chunk_form_through_the_command(string name)
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var rule = DeepMemoryRule.Named[name];
        var x = Inputs(rule, seed: 3);
        Write(dir["in.safetensors"], x);
        Dictionary<string, Tensor> Run(KernelForm form)
        {
            string output = dir[$"{form}.safetensors"];
            DeepKernelFile.Run(dir["in.safetensors"], output, new DeepKernelRunOptions(name, form, Chunk, Hidden: Hidden, Backward: true));
            return Read(output);
        }
        var chunk = Run(KernelForm.Chunk);
        AssertOutputs(chunk, Run(KernelForm.Naive), 1e-10, $"{name} naive vs chunk");
        AssertOutputs(chunk, Run(KernelForm.Step), 1e-10, $"{name} step vs chunk");
    }

    [Fact]
    public void The_cli_process_runs_a_deep_rule_with_every_memory_option_and_reports_bad_input()
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var rule = DeepMemoryRule.Named["omeganet"].WithWindow(2);
        var mlp = Mlp(residual: true, MemoryActivation.Silu);
        var x = Inputs(rule, seed: 11, mlp);
        Write(dir["in.safetensors"], x);
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "kernel", "--rule", "omeganet", "-i", "in.safetensors",
            "-o", "out.safetensors", "--chunk-size", "3", "--depth", "2", "--hidden", "6", "--activation", "silu", "--residual-norm",
            "--window", "2", "--backward");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Single(stdout.TrimEnd().Split('\n'));
        foreach (var part in new[] { "omeganet chunk (C=3) F64", $"B={B} T={T} H={H} Dk={D} Dv={D}", "depth 2, hidden 6 silu",
            "residual norm", "window 2", "dw0.1" })
            Assert.Contains(part, stdout);
        AssertOutputs(Reference(rule, mlp, x), Read(dir["out.safetensors"]), 1e-12, "cli");

        x.Remove("eta");
        Write(dir["noeta.safetensors"], x);
        (code, stdout, stderr) = CliProcess.Run(dir.Path, "kernel", "--rule", "omeganet", "-i", "noeta.safetensors", "-o",
            "bad.safetensors", "--backward", "--hidden", "6");
        Assert.Equal(2, code);
        Assert.StartsWith("error: noeta.safetensors: missing tensor \"eta\" [B, T, H], " +
            "which rule omeganet (its learner keeps momentum) needs", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.False(File.Exists(dir["bad.safetensors"]));

        (code, _, stderr) = CliProcess.Run(dir.Path, "kernel", "--rule", "gated_delta", "-i", "in.safetensors", "-o", "bad.safetensors",
            "--depth", "2");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --depth applies to the deep rules only", stderr);
        (code, _, stderr) = CliProcess.Run(dir.Path, "kernel", "--rule", "lstm", "-i", "in.safetensors", "-o", "bad.safetensors");
        Assert.Equal(2, code);
        Assert.StartsWith("error: unknown rule \"lstm\"; allowed: linear, gated_linear, delta, gated_delta, titans, moneta, yaad, " +
            "memora, omeganet, atlas", stderr);
    }

    [Fact]
    public void F32_in_gives_F32_out_close_to_the_fp64_result()
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var rule = DeepMemoryRule.Named["titans"];
        var x = Inputs(rule, seed: 5);
        Write(dir["in32.safetensors"], x.ToDictionary(kv => kv.Key, kv => kv.Value.to(float32)));
        DeepKernelFile.Run(dir["in32.safetensors"], dir["out32.safetensors"],
            new DeepKernelRunOptions("titans", ChunkSize: Chunk, Hidden: Hidden, Backward: true));
        Assert.All(SafeTensors.Read(dir["out32.safetensors"]).Tensors, e => Assert.Equal(SafeTensorDType.F32, e.DType));
        AssertOutputs(Reference(rule, Mlp(), x), Read(dir["out32.safetensors"]), 1e-4, "titans fp32");
    }

    public static TheoryData<string, string, string> BadInputs => new()
    {
        { "missing eta", "titans", "missing tensor \"eta\" [B, T, H], which rule titans (its learner keeps momentum) needs" },
        { "eta for yaad", "yaad", "tensor \"eta\" is not used by rule yaad, whose learner keeps no momentum" },
        { "missing delta", "yaad", "missing tensor \"delta\" [B, T, H], which rule yaad (the Huber threshold) needs" },
        { "delta for titans", "titans", "tensor \"delta\" is not used by rule titans" },
        { "missing theta", "memora", "missing tensor \"theta\" [B, T, H], which every rule (the learning rate) needs" },
        { "missing w0.1", "moneta", "missing tensor \"w0.1\" [H, in, out], which the depth-2 memory (its initial weights) needs" },
        { "extra w0.2", "moneta", "tensor \"w0.2\" is not used by the depth-2 memory, whose layers are w0.0 … w0.1 (--depth)" },
        {
            "wrong w0 hidden", "titans",
            "w0.0 has shape [2, 4, 8], expected [2, 4, 6]: layer 0 of the depth-2 memory maps Dk 4 to hidden 6 (--hidden sets"
        },
        { "wrong theta", "atlas", "theta has shape [2, 7, 2, 1], expected [2, 7, 2]" },
        { "wrong dw0", "titans", "dw0 has shape [2, 2, 6, 4], expected [2, 2, 4, 6] like w0" },
        { "state cotangent without backward", "titans", "tensor \"dw0\" is only used with --backward" },
        {
            "unknown name", "atlas",
            "unknown tensor \"dh0\"; allowed names: q, k, v, theta, eta, alpha, gamma, delta, w0.<l> (l < depth), do, and d + " +
            "a final-state name (w0, w0_chunk_start, s0, w1, w1_chunk_start, s1, window_k, window_v, window_gamma)"
        },
        { "mixed dtypes", "yaad", "tensor \"w0.1\" is F32 but q is F64; all inputs must share one dtype" },
        { "window 0", "omeganet", "the Omega window must be at least 1 token, got 0" },
        { "alpha above 1", "titans", "tensor \"alpha\" ranges over [" },
        { "negative theta", "yaad", "(a learning rate, at least 0)" },
        { "NaN in v", "memora", "tensor \"v\" holds NaN or infinite values" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_is_one_clear_error_and_nothing_is_written(string problem, string name, string expected)
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var rule = DeepMemoryRule.Named[name];
        var x = Inputs(rule, seed: 13);
        bool backward = problem != "state cotangent without backward";
        int? depth = problem == "extra w0.2" ? 2 : null;
        switch (problem)
        {
            case "missing eta": x.Remove("eta"); break;
            case "eta for yaad": x["eta"] = zeros(B, T, H, float64); break;
            case "missing delta": x.Remove("delta"); break;
            case "delta for titans": x["delta"] = ones(B, T, H, float64); break;
            case "missing theta": x.Remove("theta"); break;
            case "missing w0.1": x.Remove("w0.1"); depth = 2; break;
            case "extra w0.2": x["w0.2"] = zeros(H, Hidden, D, float64); break;
            case "wrong w0 hidden": x["w0.0"] = zeros(H, D, 8, float64); break;
            case "wrong theta": x["theta"] = x["theta"].unsqueeze(-1); break;
            case "wrong dw0": x["dw0"] = zeros(B, H, Hidden, D, float64); break;
            case "state cotangent without backward": x.Remove("do"); break;
            case "unknown name": x["dh0"] = zeros(1, float64); break;
            case "mixed dtypes": x["w0.1"] = x["w0.1"].to(float32); break;
            case "alpha above 1": x["alpha"] = x["alpha"] + 1.5; break;
            case "negative theta": x["theta"][0, 0, 0] = -0.1; break;
            case "NaN in v": x["v"][1, 2, 0, 3] = double.NaN; break;
        }
        string input = dir["in.safetensors"];
        Write(input, x);
        var options = new DeepKernelRunOptions(name, ChunkSize: Chunk, Depth: depth, Hidden: Hidden, Backward: backward,
            Window: problem == "window 0" ? 0 : null);
        var e = Assert.Throws<MnemoException>(() => DeepKernelFile.Run(input, dir["out.safetensors"], options));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith(input + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(dir["out.safetensors"]));
    }
}
