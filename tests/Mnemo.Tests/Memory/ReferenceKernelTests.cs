using Mnemo.IO;
using Mnemo.Memory.Matrix;
using Mnemo.Tools;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// The generalized delta kernel against fla's reference recurrences for GDN-2, Comba and RWKV-7, the mLSTM against
/// mlstm_kernels' stabilised step, Mamba-3 against state-spaces/mamba's reference steps (SISO, MIMO), log-linear attention against
/// fla's naive form (on Gated DeltaNet against the authors' recurrence) and MesaNet against fla's chunked CG reference,
/// written token by token in float64 by scripts/fla-fixtures/make_kernel_fixtures.py (Fixtures/kernels): inputs in the
/// reference's own parametrisation, mapped onto the kernel's erase vector, written value and transition vector (or the
/// rule's own inputs) here, and compared for outputs, final states and the gradient of every input.
/// </summary>
[Collection(TorchCollection.Name)]
public class ReferenceKernelTests
{
    /// <summary>A rule's inputs (by the reference's names) → the kernel's.</summary>
    static KernelInputs Map(string rule, IReadOnlyDictionary<string, Tensor> x) => rule switch
    {
        // GDN-2: S = (I − k (b ⊙ k)ᵀ) D S + k (w ⊙ v)ᵀ
        "gdn2" => new(x["q"], x["k"], x["w"] * x["v"], x["g"], null, x["h0"], Erase: x["b"] * x["k"]),
        // Comba: S = (α I − β k pᵀ) S + β k vᵀ, p read before the decay
        "comba" => new(x["q"], x["k"], x["beta"].unsqueeze(-1) * x["v"], x["g"], null, x["h0"],
            Erase: x["beta"].unsqueeze(-1) * x["p"], ReadBeforeDecay: true),
        // RWKV-7 (fla's a, b): S = D S + b (aᵀ S) + k vᵀ, i.e. the erase vector −a read before the decay, taken out along b
        _ => new(x["r"], x["k"], x["v"], x["w"], null, x["h0"], Erase: -x["a"], Transition: x["b"], ReadBeforeDecay: true),
    };

    [Theory]
    [InlineData("gdn2", KernelForm.Chunk)]
    [InlineData("gdn2", KernelForm.Step)]
    [InlineData("comba", KernelForm.Chunk)]
    [InlineData("comba", KernelForm.Step)]
    [InlineData("rwkv7", KernelForm.Chunk)]
    [InlineData("rwkv7", KernelForm.Step)]
    public void The_kernel_matches_the_reference_recurrence(string rule, KernelForm form)
    {
        using var scope = NewDisposeScope();
        var (all, leaves) = Load(rule);
        var (o, state) = MatrixKernels.Run(MatrixKernelKind.Delta, form, Map(rule, leaves), chunkSize: 16);
        ((o * all["do"]).sum() + (state * all["dht"]).sum()).backward();
        AssertMatches($"{rule} {form}", all, leaves, [("o", o), ("ht", state)]);
    }

    [Theory]
    [InlineData(KernelForm.Naive)]
    [InlineData(KernelForm.Step)]
    [InlineData(KernelForm.Chunk)]
    public void The_mlstm_matches_the_reference_recurrence(KernelForm form)
    {
        // mlstm_kernels' stabilised step (q already scaled), from carried C, n and m, ĩ and f̃ spread enough to move m
        using var scope = NewDisposeScope();
        var (all, x) = Load("mlstm");
        var state = new MlstmState(x["c0"], x["n0"], x["m0"]);
        var (h, s) = MlstmMemory.Run(form, new MlstmInputs(x["q"], x["k"], x["v"], x["i"], x["f"], state), chunkSize: 16);
        ((h * all["do"]).sum() + (s.C * all["dht"]).sum() + (s.N * all["dnt"]).sum() + (s.M * all["dmt"]).sum()).backward();
        AssertMatches($"mlstm {form}", all, x, [("o", h), ("ht", s.C), ("nt", s.N), ("mt", s.M)]);
    }

    [Theory]
    [InlineData(KernelForm.Naive)]
    [InlineData(KernelForm.Step)]
    [InlineData(KernelForm.Chunk)]
    public void Mamba3_matches_the_reference_recurrence(KernelForm form)
    {
        // state-spaces/mamba's reference step in its own parametrisation: biases added to C and B, θ = π tanh(angles),
        // λ = σ(trap); from a carried state, key, value and angle
        using var scope = NewDisposeScope();
        var (all, x) = Load("mamba3");
        var state = new Mamba3State(x["h0"], x["k0"].unsqueeze(1), x["v0"].unsqueeze(1), x["phi0"]);    // one rank
        var inputs = new Mamba3Inputs(x["q"] + x["q_bias"], x["k"] + x["k_bias"], x["v"], x["adt"], x["dt"], x["trap"].sigmoid(),
            x["angles"].tanh() * Math.PI, state);
        var (y, s) = Mamba3Memory.Run(form, inputs, chunkSize: 16);
        var (key, value) = (s.Key.squeeze(1), s.Value.squeeze(1));
        ((y * all["do"]).sum() + (s.S * all["dht"]).sum() + (key * all["dkt"]).sum() + (value * all["dvt"]).sum()
            + (s.Angle * all["dphit"]).sum()).backward();
        AssertMatches($"mamba3 {form}", all, x, [("o", y), ("ht", s.S), ("kt", key), ("vt", value), ("phit", s.Angle)]);
    }

    [Theory]
    [InlineData(KernelForm.Naive)]
    [InlineData(KernelForm.Step)]
    [InlineData(KernelForm.Chunk)]
    public void Mamba3_mimo_matches_the_reference_recurrence(KernelForm form)
    {
        // state-spaces/mamba's MIMO reference step, R = 3: C_r, B_r [B, T, R, H, N] with biases [H, R, N], values up-projected
        // by mimo_v and the R reads down-projected by mimo_o [H, R, P]; from carried keys, values, state and angle
        using var scope = NewDisposeScope();
        var (all, x) = Load("mamba3_mimo");
        long b = x["v"].shape[0], t = x["v"].shape[1], h = x["v"].shape[2], p = x["v"].shape[3], rank = x["q"].shape[2];
        Tensor Rows(Tensor perRank) => perRank.flatten(1, 2);                                  // [B, T, R, H, ·] → [B, T·R, H, ·]
        var q = Rows(x["q"] + x["q_bias"].transpose(0, 1));
        var k = Rows(x["k"] + x["k_bias"].transpose(0, 1));
        var v = Rows(x["v"].unsqueeze(2) * x["mimo_v"].transpose(0, 1));
        var state = new Mamba3State(x["h0"], x["k0"], x["v0"], x["phi0"]);
        var inputs = new Mamba3Inputs(q, k, v, x["adt"], x["dt"], x["trap"].sigmoid(), x["angles"].tanh() * Math.PI, state);
        var (reads, s) = Mamba3Memory.Run(form, inputs, chunkSize: 16);
        var y = (reads.view(b, t, rank, h, p) * x["mimo_o"].transpose(0, 1)).sum([2]);
        ((y * all["do"]).sum() + (s.S * all["dht"]).sum() + (s.Key * all["dkt"]).sum() + (s.Value * all["dvt"]).sum()
            + (s.Angle * all["dphit"]).sum()).backward();
        AssertMatches($"mamba3 MIMO {form}", all, x, [("o", y), ("ht", s.S), ("kt", s.Key), ("vt", s.Value), ("phit", s.Angle)]);
    }

    [Theory]
    [InlineData(KernelForm.Naive)]
    [InlineData(KernelForm.Step)]
    [InlineData(KernelForm.Chunk)]
    public void Log_linear_attention_matches_the_reference(KernelForm form)
    {
        // fla's naive_log_linear_attn: a fresh stream of 37 tokens, 7 levels, scales from N(0, 1); outputs only
        using var scope = NewDisposeScope();
        var (all, x) = Load("loglinear");
        var (y, _) = LogLinearMemory.Run(form, new LogLinearInputs(x["q"], x["k"], x["v"], x["g"], x["levels"]), chunkSize: 16);
        (y * all["do"]).sum().backward();
        AssertMatches($"log-linear {form}", all, x, [("o", y)]);
    }

    [Theory]
    [InlineData(KernelForm.Naive)]
    [InlineData(KernelForm.Step)]
    [InlineData(KernelForm.Chunk)]
    public void Log_linear_gated_deltanet_matches_the_reference(KernelForm form)
    {
        // HanGuo97/log-linear-attention's hattention_recurrent (Gated DeltaNet, base 2): 37 tokens, 7 levels, β ∈ [0, 2],
        // unit keys; its levels after the last token's fold as the final state
        using var scope = NewDisposeScope();
        var (all, x) = Load("loglinear_gdn");
        var inputs = new LogLinearInputs(x["q"], x["k"], x["v"], x["g"], x["levels"], Beta: x["beta"]);
        var (y, s) = LogLinearMemory.Run(form, inputs, chunkSize: 16);
        ((y * all["do"]).sum() + (s.S * all["dht"]).sum()).backward();
        AssertMatches($"log-linear GDN {form}", all, x, [("o", y), ("ht", s.S)]);
    }

    [Theory]
    [InlineData(KernelForm.Naive)]
    [InlineData(KernelForm.Step)]
    [InlineData(KernelForm.Chunk)]
    public void Mesanet_matches_the_reference(KernelForm form)
    {
        // fla's chunked CG reference: carried H and G, 10 CG steps from x = 0 with its 1e-5 guards
        using var scope = NewDisposeScope();
        var (all, x) = Load("mesa");
        var inputs = new MesaInputs(x["q"], x["k"], x["v"], x["g"], x["beta"], x["lamb"], new MesaState(x["h0"], x["g0"]));
        var (o, s) = MesaMemory.Run(form, inputs, steps: 10, chunkSize: 16);
        ((o * all["do"]).sum() + (s.H * all["dht"]).sum() + (s.G * all["dgt"]).sum()).backward();
        AssertMatches($"mesa {form}", all, x, [("o", o), ("ht", s.H), ("gt", s.G)]);
    }

    /// <summary>A fixture's tensors, and its inputs: every tensor with a gradient in the file, as leaves (the outputs o and
    /// the final states ht, nt, mt, kt, vt, phit, gt have their cotangents do, dht, … instead).</summary>
    static (Dictionary<string, Tensor> All, Dictionary<string, Tensor> Leaves) Load(string rule)
    {
        var file = SafeTensors.Read(Path.Combine(Repository.Root, "tests", "Mnemo.Tests", "Fixtures", "kernels", rule + ".safetensors"));
        var all = file.Tensors.ToDictionary(e => e.Name, e => TensorIO.ToTensor(e));
        string[] outputs = ["o", "ht", "nt", "mt", "kt", "vt", "phit", "gt"];
        var leaves = all.Keys.Where(n => all.ContainsKey("d" + n) && !outputs.Contains(n))
            .ToDictionary(n => n, n => all[n].requires_grad_(true));
        Assert.Equal(ScalarType.Float64, all["o"].dtype);
        Assert.True(leaves.Count >= 5, $"{rule}: only {leaves.Count} inputs have gradients in the fixture");
        return (all, leaves);
    }

    /// <summary>Outputs, final states and every input's gradient within 1e-10 (relative RMS) of the fixture's.</summary>
    static void AssertMatches(string label, Dictionary<string, Tensor> all, Dictionary<string, Tensor> leaves,
        (string Name, Tensor Value)[] outputs)
    {
        var failures = new List<string>();
        void Check(string what, Tensor actual, Tensor expected)
        {
            double e = Equivalence.RelativeRms(actual, expected);
            if (!(e <= 1e-10)) failures.Add($"{what}: relative RMS {e:E2}");
        }
        foreach (var (name, value) in outputs) Check(name, value, all[name]);
        foreach (var (name, leaf) in leaves) Check("d" + name, leaf.grad!, all["d" + name]);
        Assert.True(failures.Count == 0, $"{label}: {string.Join("; ", failures)}");
    }

    [Fact]
    public void Mnemo_kernel_runs_the_rwkv7_reference_from_a_file()
    {
        // `mnemo kernel --rule gated_delta --read-before-decay` on RWKV-7's fixture in the kernel file's names: q = r, g = w,
        // erase = −a, transition = b; its outputs and gradients are the reference's (derase = −da).
        using var scope = NewDisposeScope();
        using var dir = new Tmp.Dir();
        var x = SafeTensors.Read(Path.Combine(Repository.Root, "tests", "Mnemo.Tests", "Fixtures", "kernels", "rwkv7.safetensors"))
            .Tensors.ToDictionary(e => e.Name, e => TensorIO.ToTensor(e));
        var input = new Dictionary<string, Tensor>
        {
            ["q"] = x["r"], ["k"] = x["k"], ["v"] = x["v"], ["g"] = x["w"], ["erase"] = -x["a"], ["transition"] = x["b"], ["h0"] = x["h0"],
            ["do"] = x["do"], ["dht"] = x["dht"],
        };
        SafeTensors.Write(dir["in.safetensors"], input.Select(kv => TensorIO.ToEntry(kv.Key, kv.Value)));
        var result = KernelFile.Run(dir["in.safetensors"], dir["out.safetensors"],
            new KernelRunOptions(KernelRule.GatedDelta, ChunkSize: 16, Backward: true, ReadBeforeDecay: true));
        Assert.Contains("read before the decay", result.Summary());
        var o = SafeTensors.Read(dir["out.safetensors"]).Tensors.ToDictionary(e => e.Name, e => TensorIO.ToTensor(e));
        var expected = new Dictionary<string, Tensor>
        {
            ["o"] = x["o"], ["ht"] = x["ht"], ["dq"] = x["dr"], ["dk"] = x["dk"], ["dv"] = x["dv"], ["dg"] = x["dw"], ["derase"] = -x["da"],
            ["dtransition"] = x["db"], ["dh0"] = x["dh0"],
        };
        foreach (var (name, value) in expected)
            Assert.True(Equivalence.RelativeRms(o[name], value) <= 1e-10, $"{name}: {Equivalence.RelativeRms(o[name], value):E2}");
    }
}
