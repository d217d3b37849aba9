using Mnemo.Evaluation.Mitigations;
using Mnemo.Layers;
using Mnemo.Memory.Matrix;
using Mnemo.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Evaluation;

/// <summary>Stuffed Mamba's evaluation-time mitigations (MemoryEvalOptions) and the per-position state norms.</summary>
[Collection(TorchCollection.Name)]
public class MitigationTests
{
    const long T = 20;

    static KernelInputs Inputs(MatrixKernelKind kind, bool channelGate, int seed = 3, long t = T)
    {
        var gen = new Generator((ulong)seed);
        long b = 2, h = 2, dk = 4, dv = 3;
        var q = randn([b, t, h, dk], float64, generator: gen);
        var k = randn([b, t, h, dk], float64, generator: gen);
        if (kind == MatrixKernelKind.Delta) k = nn.functional.normalize(k, p: 2, dim: -1);
        var v = randn([b, t, h, dv], float64, generator: gen);
        var g = -rand(channelGate ? [b, t, h, dk] : [b, t, h], float64, generator: gen) * 0.3;
        var beta = kind == MatrixKernelKind.Delta ? rand([b, t, h], float64, generator: gen) : null;
        return new KernelInputs(q, k, v, g, beta);
    }

    static void Close(Tensor expected, Tensor actual, double tol, string what)
    {
        double err = (expected - actual).abs().max().to(float64).item<double>();
        Assert.True(err < tol, $"{what}: max |Δ| = {err:G3}");
    }

    static KernelInputs Slice(KernelInputs x, long start, long length) => new(
        x.Q.narrow(1, start, length), x.K.narrow(1, start, length), x.V.narrow(1, start, length),
        x.G?.narrow(1, start, length), x.Beta?.narrow(1, start, length));

    [Theory]
    [InlineData(false, 5)]
    [InlineData(true, 5)]
    [InlineData(false, 8)]
    public void Gated_linear_window_equals_a_recomputation_over_the_last_r_tokens(bool channelGate, int r)
    {
        using var scope = NewDisposeScope();
        var x = Inputs(MatrixKernelKind.GatedLinear, channelGate);
        var (o, state, _) = MitigatedKernel.Run(MatrixKernelKind.GatedLinear, x, 4, new MemoryEvalOptions { Window = r }, streaming: false);
        for (long t = 0; t < T; t++)
        {
            long start = Math.Max(0, t - r + 1);
            var w = Slice(x, start, t - start + 1);
            var (naive, naiveState) = NaiveMatrixMemory.GatedLinear(w.Q, w.K, w.V, w.G, null);
            Close(naive.select(1, t - start), o.select(1, t), 1e-10, $"o at t={t}");
            if (t == T - 1) Close(naiveState, state, 1e-10, "state of the last window");
        }
    }

    [Theory]
    [InlineData(6)]
    [InlineData(5)]   // odd: the two copies restart half = 2 and r − half = 3 tokens apart
    public void Delta_window_restarts_so_each_position_reads_the_last_half_to_whole_window(int r)
    {
        using var scope = NewDisposeScope();
        var x = Inputs(MatrixKernelKind.Delta, false);
        var (o, _, _) = MitigatedKernel.Run(MatrixKernelKind.Delta, x, 4, new MemoryEvalOptions { Window = r }, streaming: false);
        for (long t = 0; t < T; t++)
        {
            long half = r / 2, phase = t % r;
            long seen = Math.Max(phase + 1, (phase + half) % r + 1);   // tokens the longer-running copy has seen
            long start = Math.Max(0, t - seen + 1);
            Assert.InRange(t - start + 1, Math.Min(t + 1, r - half), r);
            var w = Slice(x, start, t - start + 1);
            var (naive, _) = NaiveMatrixMemory.Delta(w.Q, w.K, w.V, w.G, w.Beta!, null);
            Close(naive.select(1, t - start), o.select(1, t), 1e-10, $"o at t={t}");
        }
    }

    [Theory]
    [InlineData(MatrixKernelKind.GatedLinear)]
    [InlineData(MatrixKernelKind.Delta)]
    public void Forget_more_is_the_kernel_on_scaled_gates_and_values_and_the_norm_cap_bounds_the_state(MatrixKernelKind kind)
    {
        using var scope = NewDisposeScope();
        var x = Inputs(kind, false);
        var options = new MemoryEvalOptions { ForgetScale = 2.5, InsertScale = 0.5 };
        var (o, s, _) = MitigatedKernel.Run(kind, x, 4, options, streaming: false);
        var (expected, expectedState) = MatrixKernels.Run(kind, KernelForm.Naive, x with { G = x.G! * 2.5, V = x.V * 0.5 });
        Close(expected, o, 1e-10, "forget more");
        Close(expectedState, s, 1e-10, "forget more state");

        var free = MitigatedKernel.Run(kind, x, 4, new MemoryEvalOptions { RecordStateNorms = true }, streaming: false);
        double tau = 0.5 * free.Norms!.max().item<double>();
        var capped = MitigatedKernel.Run(kind, x, 4, new MemoryEvalOptions { StateNormCap = tau, RecordStateNorms = true },
            streaming: false);
        Assert.True(capped.Norms!.max().item<double>() <= tau * (1 + 1e-12));
        Assert.True(capped.State.square().sum([-2, -1]).sqrt().max().item<double>() <= tau * (1 + 1e-12));
        Assert.True((capped.O - free.O).abs().max().item<double>() > 1e-3, "the cap was active");
        // Below the cap the normalised form is the plain recurrence.
        Close(free.O, MitigatedKernel.Run(kind, x, 4, new MemoryEvalOptions { StateNormCap = 1e9 }, streaming: false).O, 1e-10,
            "inactive cap");
    }

    public static TheoryData<MixerKind> Mixers => new() { MixerKind.Mamba2, MixerKind.Gla, MixerKind.GatedDeltaNet, MixerKind.DeltaNet };

    [Theory]
    [MemberData(nameof(Mixers))]
    public void Neutral_options_leave_the_model_unchanged(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Build(TinyModels.Config(mixer, c => c with { NumLayers = 1, MlpRatio = 0 }), fp64: false);
        using var noGrad = no_grad();
        var tokens = TinyModels.Tokens(2, 24);
        var reference = model.forward(tokens);
        foreach (var options in new[]
        {
            new MemoryEvalOptions { ForgetScale = 1, InsertScale = 1 },
            new MemoryEvalOptions { StateNormCap = double.PositiveInfinity },
            new MemoryEvalOptions { Window = 24 },
            new MemoryEvalOptions { Window = 64 },
        })
        {
            Assert.Equal(1, MemoryEval.Apply(model, options));
            Close(reference, model.forward(tokens), 1e-5, $"{mixer} {options}");
        }
        MemoryEval.Apply(model, new MemoryEvalOptions { ForgetScale = 4, InsertScale = 0.5 });
        Assert.True((reference - model.forward(tokens)).abs().max().item<float>() > 1e-4, "λ = 4, ρ = 0.5 change the outputs");
        MemoryEval.Apply(model, MemoryEvalOptions.None);
        Close(reference, model.forward(tokens), 1e-6, "reset");
    }

    [Theory]
    [InlineData(MixerKind.LogLinearMamba2)]
    [InlineData(MixerKind.LogLinearGatedDeltaNet)]
    public void A_memory_kept_in_levels_takes_no_mitigation(MixerKind mixer)
    {
        // log-linear Mamba-2 and Gated DeltaNet are built on their rules' layers but keep one state per Fenwick level, not
        // the kernel's one state: the mitigations leave them alone rather than set a kernel they never run
        using var model = TinyModels.Build(TinyModels.Config(mixer, c => c with { NumLayers = 1, MlpRatio = 0 }));
        Assert.Empty(MemoryEval.Memories(model));
        Assert.Equal(0, MemoryEval.Apply(model, new MemoryEvalOptions { ForgetScale = 2 }));
    }

    [Theory]
    [InlineData(MixerKind.Mamba2)]
    [InlineData(MixerKind.GatedDeltaNet)]
    public void State_norms_match_the_streamed_states_and_the_final_state(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Build(TinyModels.Config(mixer));
        var tokens = TinyModels.Tokens(2, 12);
        using var cache = model.NewCache();
        var layers = MemoryEval.StateNorms(model, tokens, cache: cache);
        Assert.Equal([0, 1], layers.Select(l => l.Layer));
        foreach (var l in layers)
        {
            Assert.Equal(2, l.Norms.Length);
            Assert.Equal(12, l.Positions);
            Assert.Equal(2, l.Heads);
            var final = cache.Layers[l.Layer].Get("state")!.square().sum([-2, -1]).sqrt();    // [B, H]
            for (int b = 0; b < 2; b++)
                for (int h = 0; h < 2; h++)
                    Assert.Equal(final[b, h].item<double>(), l.Norms[b][^1][h], 1e-10);
        }

        // Every position: the state after streaming t + 1 tokens one by one.
        using var streamed = model.NewCache();
        using var noGrad = no_grad();
        for (int t = 0; t < 12; t++)
        {
            model.Step(tokens.narrow(1, t, 1), streamed);
            foreach (var l in layers)
            {
                var norm = streamed.Layers[l.Layer].Get("state")!.square().sum([-2, -1]).sqrt();
                Assert.Equal(norm[1, 0].item<double>(), l.Norms[1][t][0], 1e-10);
            }
        }
    }

    [Theory]
    [InlineData(MixerKind.Mamba2)]
    [InlineData(MixerKind.GatedDeltaNet)]
    public void Streaming_under_forget_more_and_the_norm_cap_equals_the_full_forward(MixerKind mixer)
    {
        using var scope = NewDisposeScope();
        using var model = TinyModels.Build(TinyModels.Config(mixer, c => c with { NumLayers = 1, MlpRatio = 0 }));
        using var noGrad = no_grad();
        var tokens = TinyModels.Tokens(1, 10);
        double tau = 0.5 * MemoryEval.StateNorms(model, tokens)[0].Max(10);
        MemoryEval.Apply(model, new MemoryEvalOptions { ForgetScale = 2, InsertScale = 0.7, StateNormCap = tau });
        var full = model.forward(tokens);
        using var cache = model.NewCache();
        var streamed = cat(Enumerable.Range(0, 10).Select(t => model.Step(tokens.narrow(1, t, 1), cache)).ToArray(), 1);
        Close(full, streamed, 1e-10, $"{mixer} streamed");
        var e = Assert.Throws<MnemoException>(() =>
        {
            MemoryEval.Apply(model, new MemoryEvalOptions { Window = 4 });
            model.Step(tokens, cache);
        });
        Assert.Contains("streaming", e.Message);
    }
}
