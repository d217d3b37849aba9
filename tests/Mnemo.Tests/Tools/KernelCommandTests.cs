using Mnemo.IO;
using Mnemo.Memory.Matrix;
using Mnemo.Tests.Cli;
using Mnemo.Tests.Memory;
using Mnemo.Tools;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Tools;

/// <summary>
/// `mnemo kernel`: a safetensors file in, the rule's outputs and gradients out. Every result is compared with a
/// direct <see cref="MatrixKernels.Run"/> call plus autograd on the same tensors.
/// </summary>
[Collection(TorchCollection.Name)]
public class KernelCommandTests
{
    const long B = 2, T = 70, H = 2, Dk = 6, Dv = 5;

    /// <summary>Seeded fp64 inputs for a rule, with h0 and both cotangents, as a file would hold them.</summary>
    static Dictionary<string, Tensor> Inputs(KernelRule rule, int seed, bool perChannel = false)
    {
        var gen = new Generator((ulong)seed);
        var x = new Dictionary<string, Tensor>
        {
            ["q"] = randn([B, T, H, Dk], float64, generator: gen),
        };
        var k = randn([B, T, H, Dk], float64, generator: gen);
        x["k"] = rule.TakesBeta() ? nn.functional.normalize(k, p: 2, dim: -1) : k * 0.5;
        x["v"] = randn([B, T, H, Dv], float64, generator: gen);
        if (rule.TakesGate()) x["g"] = rand(perChannel ? new[] { B, T, H, Dk } : new[] { B, T, H }, float64, generator: gen) * -0.99 - 0.01;
        if (rule.TakesBeta()) x["beta"] = rand([B, T, H], float64, generator: gen) * 0.9 + 0.05;
        x["h0"] = randn([B, H, Dk, Dv], float64, generator: gen) * 0.5;
        x["do"] = randn([B, T, H, Dv], float64, generator: gen);
        x["dht"] = randn([B, H, Dk, Dv], float64, generator: gen);
        return x;
    }

    static void Write(string path, IReadOnlyDictionary<string, Tensor> x) =>
        SafeTensors.Write(path, x.Select(kv => TensorIO.ToEntry(kv.Key, kv.Value)));

    static Dictionary<string, Tensor> Read(string path) =>
        SafeTensors.Read(path).Tensors.ToDictionary(e => e.Name, TensorIO.ToTensor);

    /// <summary>The expected outputs: MatrixKernels.Run on leaves (q scaled) and the gradients of sum(o·do) + sum(ht·dht).</summary>
    static Dictionary<string, Tensor> Reference(KernelRule rule, Dictionary<string, Tensor> x, KernelForm form = KernelForm.Chunk,
        int chunk = 64, double scale = 1)
    {
        using var leaves = new Equivalence.Leaves();
        foreach (var name in new[] { "q", "k", "v", "g", "beta", "h0" }.Where(x.ContainsKey))
            leaves.Tensors[name] = x[name].detach().clone().requires_grad_(true);
        var r = Equivalence.Run(leaves,
            l => MatrixKernels.Run(rule.Kind(), form,
                new KernelInputs(l["q"]! * scale, l["k"]!, l["v"]!, l["g"], l["beta"], l["h0"]), chunk),
            x["do"], x["dht"]);
        var expected = new Dictionary<string, Tensor> { ["o"] = r.O, ["ht"] = r.State };
        foreach (var (name, grad) in r.Grads) expected["d" + name] = grad;
        return expected;
    }

    /// <summary>Same names as <paramref name="expected"/>, each within <paramref name="tolerance"/> relative RMS.</summary>
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

    public static TheoryData<KernelRule, bool> Rules => new()
    {
        { KernelRule.Linear, false },
        { KernelRule.GatedLinear, false },
        { KernelRule.GatedLinear, true },
        { KernelRule.Delta, false },
        { KernelRule.GatedDelta, false },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Outputs_and_gradients_equal_the_kernel_with_autograd(KernelRule rule, bool perChannel)
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var x = Inputs(rule, seed: 1 + (int)rule, perChannel);
        Write(dir["in.safetensors"], x);
        var result = KernelFile.Run(dir["in.safetensors"], dir["out.safetensors"], new KernelRunOptions(rule, Backward: true));

        string[] order = rule.TakesBeta() ? ["o", "ht", "dq", "dk", "dv", "dg", "dbeta", "dh0"]
            : ["o", "ht", "dq", "dk", "dv", "dg", "dh0"];
        Assert.Equal(order.Where(n => n != "dg" || rule.TakesGate()), result.Outputs.Select(e => e.Name));
        var file = SafeTensors.Read(dir["out.safetensors"]);
        Assert.Equal(rule.Name(), file.Metadata["rule"]);
        Assert.All(file.Tensors, e => Assert.Equal(SafeTensorDType.F64, e.DType));
        AssertOutputs(Reference(rule, x), Read(dir["out.safetensors"]), 1e-12, $"{rule.Name()} per-channel={perChannel}");
    }

    [Fact]
    public void The_cli_process_writes_the_outputs_and_reports_bad_input_with_exit_code_2()
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var x = Inputs(KernelRule.GatedDelta, seed: 21);
        Write(dir["in.safetensors"], x);
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "kernel", "--rule", "gated_delta", "--input", "in.safetensors",
            "--output", "out.safetensors", "--form", "chunk", "--chunk-size", "16", "--scale", "0.5", "--backward");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Single(stdout.TrimEnd().Split('\n'));
        foreach (var part in new[] { "gated_delta", "chunk (C=16)", "F64", $"B={B} T={T} H={H} Dk={Dk} Dv={Dv}", "dbeta", " s" })
            Assert.Contains(part, stdout);
        AssertOutputs(Reference(KernelRule.GatedDelta, x, chunk: 16, scale: 0.5), Read(dir["out.safetensors"]), 1e-12, "cli");

        x.Remove("q");
        Write(dir["noq.safetensors"], x);
        (code, stdout, stderr) = CliProcess.Run(dir.Path, "kernel", "--rule", "gated_delta", "-i", "noq.safetensors", "-o",
            "bad.safetensors", "--backward");
        Assert.Equal(2, code);
        Assert.StartsWith("error: noq.safetensors: missing tensor \"q\"", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.False(File.Exists(dir["bad.safetensors"]));

        // A device is written in place, never renamed over: /dev/full fails cleanly and stays a device.
        (code, _, stderr) = CliProcess.Run(
            dir.Path, "kernel", "--rule", "gated_delta", "-i", "in.safetensors", "-o", "/dev/full", "--backward");
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr);
        Assert.Equal(PathKind.Stream, Paths.KindOf("/dev/full"));
        (code, _, stderr) = CliProcess.Run(
            dir.Path, "kernel", "--rule", "gated_delta", "-i", "in.safetensors", "-o", "/dev/null", "--backward");
        Assert.True(code == 0, stderr);
        Assert.Equal(PathKind.Stream, Paths.KindOf("/dev/null"));
    }

    [Fact]
    public void A_chunk_longer_than_the_sequence_is_one_chunk_not_an_allocation()
    {
        using var scope = NewDisposeScope();
        var x = Inputs(KernelRule.GatedDelta, seed: 5);
        var huge = KernelFile.Compute(x, new KernelRunOptions(KernelRule.GatedDelta, ChunkSize: int.MaxValue, Backward: true));
        var whole = KernelFile.Compute(x, new KernelRunOptions(KernelRule.GatedDelta, ChunkSize: (int)T, Backward: true));
        Assert.Equal(whole.Select(o => o.Name), huge.Select(o => o.Name));
        for (int i = 0; i < whole.Count; i++) Assert.True(Equivalence.RelativeRms(huge[i].Value, whole[i].Value) < 1e-12, whole[i].Name);
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Naive_step_and_chunk_forms_agree_through_the_command(KernelRule rule, bool perChannel)
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var x = Inputs(rule, seed: 31 + (int)rule, perChannel);
        Write(dir["in.safetensors"], x);
        Dictionary<string, Tensor> Run(KernelForm form, int chunk)
        {
            string output = dir[$"{form}-{chunk}.safetensors"];
            KernelFile.Run(dir["in.safetensors"], output, new KernelRunOptions(rule, form, chunk, Backward: true));
            return Read(output);
        }
        var naive = Run(KernelForm.Naive, 64);
        AssertOutputs(Reference(rule, x, KernelForm.Naive), naive, 1e-12, "naive vs direct");
        AssertOutputs(naive, Run(KernelForm.Step, 64), 1e-12, $"{rule.Name()} step vs naive");
        AssertOutputs(naive, Run(KernelForm.Chunk, 64), 1e-12, $"{rule.Name()} chunk 64 vs naive");
        AssertOutputs(naive, Run(KernelForm.Chunk, 16), 1e-12, $"{rule.Name()} chunk 16 vs naive");
    }

    [Fact]
    public void F32_in_gives_F32_out_close_to_the_fp64_result()
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        foreach (var rule in Enum.GetValues<KernelRule>())
        {
            var x = Inputs(rule, seed: 41 + (int)rule);
            Write(dir["in32.safetensors"], x.ToDictionary(kv => kv.Key, kv => kv.Value.to(float32)));
            KernelFile.Run(dir["in32.safetensors"], dir["out32.safetensors"], new KernelRunOptions(rule, Backward: true));
            Assert.All(SafeTensors.Read(dir["out32.safetensors"]).Tensors, e => Assert.Equal(SafeTensorDType.F32, e.DType));
            AssertOutputs(Reference(rule, x), Read(dir["out32.safetensors"]), 1e-5, $"{rule.Name()} fp32");
        }
    }

    [Fact]
    public void Scale_multiplies_q_and_dq_is_the_gradient_for_the_q_in_the_file()
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        const double s = 0.25;
        var x = Inputs(KernelRule.GatedLinear, seed: 51, perChannel: true);
        Write(dir["in.safetensors"], x);
        KernelFile.Run(dir["in.safetensors"], dir["scaled.safetensors"],
            new KernelRunOptions(KernelRule.GatedLinear, Scale: s, Backward: true));
        var scaled = Read(dir["scaled.safetensors"]);
        AssertOutputs(Reference(KernelRule.GatedLinear, x, scale: s), scaled, 1e-12, "scale");

        // The same run on a file holding s·q with scale 1: same o, ht, dk…; its dq is for s·q, so ours is s times it.
        var prescaled = new Dictionary<string, Tensor>(x) { ["q"] = x["q"] * s };
        Write(dir["prescaled.safetensors"], prescaled);
        KernelFile.Run(dir["prescaled.safetensors"], dir["plain.safetensors"],
            new KernelRunOptions(KernelRule.GatedLinear, Backward: true));
        var plain = Read(dir["plain.safetensors"]);
        foreach (var name in new[] { "o", "ht", "dk", "dv", "dg", "dh0" })
            Assert.True(Equivalence.RelativeRms(scaled[name], plain[name]) <= 1e-12, name);
        Assert.True(Equivalence.RelativeRms(scaled["dq"], plain["dq"] * s) <= 1e-12);
        // …and the scale was really applied.
        KernelFile.Run(dir["in.safetensors"], dir["unscaled.safetensors"], new KernelRunOptions(KernelRule.GatedLinear, Backward: true));
        Assert.True(Equivalence.RelativeRms(Read(dir["unscaled.safetensors"])["o"], scaled["o"]) > 0.1);
    }

    public static TheoryData<string, string, string> BadInputs => new()
    {
        { "missing q", "delta", "missing tensor \"q\" [B, T, H, Dk], which every rule needs" },
        { "g for linear", "linear", "tensor \"g\" is not used by rule linear" },
        { "beta missing", "delta",
            "missing tensor \"beta\" [B, T, H] (or an erase vector \"erase\" [B, T, H, Dk]), which rule delta needs" },
        { "beta for gated_linear", "gated_linear", "tensor \"beta\" is not used by rule gated_linear" },
        { "g missing", "gated_delta", "missing tensor \"g\"" },
        { "g of the wrong width", "gated_delta", "g has shape [2, 70, 2, 7], expected [2, 70, 2] or [2, 70, 2, 6]" },
        { "mixed dtypes", "delta", "tensor \"k\" is F32 but q is F64; all inputs must share one dtype" },
        { "integer tensor", "delta", "tensor \"v\" is I64; kernel inputs must be F32 or F64" },
        { "wrong h0", "gated_delta", "h0 has shape [2, 2, 5, 6], expected [2, 2, 6, 5]" },
        { "wrong do", "linear", "do has shape [2, 70, 2, 6], expected [2, 70, 2, 5] like o" },
        { "unknown name", "delta", "unknown tensor \"bias\"; allowed names: q, k, v, g, beta, erase, transition, h0, do, dht" },
        { "do without backward", "delta", "tensor \"do\" is only used with --backward" },
        { "nonexistent file", "delta", "no such file" },
        { "NaN in k", "delta", "tensor \"k\" holds NaN or infinite values" },
        { "infinite beta", "delta", "tensor \"beta\" holds NaN or infinite values" },
        { "positive log-decay", "gated_delta", "tensor \"g\" ranges over [-" },
        { "a directory", "delta", "is a directory, not a safetensors file" },
        { "a pipe", "delta", "is not a regular file" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_is_one_clear_error_and_nothing_is_written(string problem, string ruleName, string expected)
    {
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var rule = KernelRules.ParseRule(ruleName);
        var x = Inputs(rule, seed: 61);
        bool backward = problem != "do without backward";
        switch (problem)
        {
            case "missing q": x.Remove("q"); break;
            case "g for linear": x["g"] = zeros(B, T, H, float64); break;
            case "beta missing": x.Remove("beta"); break;
            case "beta for gated_linear": x["beta"] = zeros(B, T, H, float64); break;
            case "g missing": x.Remove("g"); break;
            case "g of the wrong width": x["g"] = zeros(B, T, H, Dk + 1, float64); break;
            case "mixed dtypes": x["k"] = x["k"].to(float32); break;
            case "integer tensor": x["v"] = ones(B, T, H, Dv, int64); break;
            case "wrong h0": x["h0"] = zeros(B, H, Dv, Dk, float64); break;
            case "wrong do": x["do"] = zeros(B, T, H, Dk, float64); break;
            case "unknown name": x["bias"] = zeros(3, float64); break;
            case "do without backward": x.Remove("dht"); break;
            case "NaN in k": x["k"][0, 3, 1, 2] = double.NaN; break;
            case "infinite beta": x["beta"][1, 0, 0] = double.PositiveInfinity; break;
            case "positive log-decay": x["g"][0, 5, 1] = 0.25; break;
        }
        string input = dir["in.safetensors"];
        if (problem == "a directory") Directory.CreateDirectory(input);
        else if (problem == "a pipe") Assert.Equal(0, Mkfifo(input, 0x180));     // a reader would block until a writer came
        else if (problem != "nonexistent file") Write(input, x);
        var e = Assert.Throws<MnemoException>(() => KernelFile.Run(input, dir["out.safetensors"],
            new KernelRunOptions(rule, Backward: backward)));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith(input + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(dir["out.safetensors"]));
    }

    [Theory]
    [InlineData("deltanet", "unknown rule \"deltanet\"; allowed: linear, gated_linear, delta, gated_delta")]
    [InlineData("gated-delta", "unknown rule \"gated-delta\" (names are snake_case, as in configs: \"gated_delta\"); allowed: linear, " +
        "gated_linear, delta, gated_delta")]
    [InlineData("fast", "unknown form \"fast\"; allowed: naive, step, chunk")]
    public void Unknown_rule_or_form_lists_the_allowed_names(string name, string expected)
    {
        var e = Assert.Throws<MnemoException>(() => name == "fast" ? (object)KernelRules.ParseForm(name) : KernelRules.ParseRule(name));
        Assert.Equal(expected, e.Message);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo")]
    static extern int Mkfifo(string path, int mode);
}
