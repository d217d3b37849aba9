using System.Text.Json;
using Mnemo.Benchmarks;
using Mnemo.Memory.Deep;
using Mnemo.Memory.Matrix;
using Mnemo.Runtime;
using Mnemo.Tests.Cli;

namespace Mnemo.Tests.Benchmarks;

/// <summary>
/// The benchmark code runs end to end on tiny shapes and produces sane records. Properties only, never timings:
/// the numbers depend on the machine and its load. The quick shapes keep the whole bench to about a second.
/// </summary>
[Collection(TorchCollection.Name)]
public class BenchSmokeTests
{
    static bool Sane(double x) => double.IsFinite(x) && x > 0;

    [Fact]
    public void Quick_kernel_bench_gives_finite_positive_records_and_writes_json()
    {
        using var dir = new Tmp.Dir();
        var options = KernelBenchOptions.Quick with { DeepRules = [] };
        var report = KernelBenchmark.Run(options);
        report.WriteJson(dir["bench.json"]);

        Assert.True(Sane(report.PeakFp32.GflopPerSecond));
        Assert.True(report.PeakBf16 is { } bf16 && Sane(bf16.GflopPerSecond));
        Assert.Equal(options.PeakSizes.Length, report.PeakFp32.Points.Length);

        // Every rule × length has a chunk and a step row, the smallest length a naive row, every length an sdpa row.
        int[] lengths = options.Lengths;
        foreach (var rule in BenchRule.All)
            foreach (int t in lengths)
            {
                Assert.Single(report.Rows, r => r.Rule == rule.Name && r.Form == "chunk" && r.T == t);
                var step = Assert.Single(report.Rows, r => r.Rule == rule.Name && r.Form == "step" && r.T == t);
                // Longer than the step cap: timed at the cap and extrapolated, and marked so.
                Assert.Equal(t > options.StepMaxLength, step.Extrapolated);
                Assert.Equal(Math.Min(t, options.StepMaxLength), step.MeasuredT);
                Assert.Equal(t == lengths[0] ? 1 : 0, report.Rows.Count(r => r.Rule == rule.Name && r.Form == "naive" && r.T == t));
            }
        foreach (int t in lengths) Assert.Single(report.Rows, r => r.Rule == "attention" && r.Form == "sdpa" && r.T == t);

        foreach (var row in report.Rows)
            foreach (var m in new[] { row.Forward, row.ForwardBackward })
            {
                string what = $"{row.Rule} {row.Form} T={row.T}";
                Assert.True(Sane(m.Ms) && Sane(m.BestMs) && Sane(m.TokensPerSecond) && Sane(m.Gflop) && Sane(m.GflopPerSecond)
                    && Sane(m.FractionOfFp32Peak), what);
                Assert.Equal(options.Repeats, m.SamplesMs.Length);
                Assert.All(m.SamplesMs, s => Assert.True(Sane(s), what));
                Assert.True(m.BestMs <= m.Ms * (row.Extrapolated ? 1 : 1 + 1e-12), what);
                Assert.Equal(m.Gflop / (m.Ms * 1e-3), m.GflopPerSecond, 6);
            }
        foreach (var row in report.Rows.Where(r => r.Form == "chunk"))
        {
            Assert.True(Sane(row.SpeedupOverStepForward!.Value) && Sane(row.SpeedupOverStepForwardBackward!.Value));
            Assert.True(Sane(row.SpeedupOverSdpaForward!.Value) && Sane(row.SpeedupOverSdpaForwardBackward!.Value));
            if (row.T == lengths[0]) Assert.Null(row.ScalingFromT);
            else Assert.True(row.ScalingFromT == lengths[0] && Sane(row.ScalingForward!.Value) && Sane(row.ScalingForwardBackward!.Value));
            // Forward+backward is credited with 3× the forward FLOPs (KernelFlops).
            Assert.Equal(KernelFlops.ForwardBackwardFactor * row.Forward.Gflop, row.ForwardBackward.Gflop, 9);
        }

        using var json = JsonDocument.Parse(File.ReadAllText(dir["bench.json"]));
        var root = json.RootElement;
        Assert.Equal(report.Rows.Length, root.GetProperty("rows").GetArrayLength());
        Assert.True(root.GetProperty("peak_fp32").GetProperty("gflop_per_second").GetDouble() > 0);
        Assert.Equal(TorchSharp.torch.get_num_threads(), root.GetProperty("machine").GetProperty("torch_threads").GetInt32());
        Assert.StartsWith("2.", root.GetProperty("machine").GetProperty("libtorch").GetString());
        Assert.Contains("forward_backward", root.GetProperty("rows")[0].EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void Quick_deep_bench_times_every_deep_rule_and_scales_forms_over_the_memory_budget()
    {
        // A budget that fits the dual-form chunk of the smallest length but not the materialised ones or the step loops.
        var options = KernelBenchOptions.Quick with
        {
            Rules = [],
            Attention = false,
            Bf16Peak = false,
            Lengths = [16, 32],
            Dims = [8],
            ChunkSize = 8,
            Warmup = 0,
            StepMaxLength = 16,
            NaiveMaxLength = 16,
            PeakSizes = [64],
            DeepMemoryBudgetBytes = 400_000,
        };
        var report = KernelBenchmark.Run(options);
        Assert.Equal(DeepMemoryRule.Named.Keys, report.Settings.DeepRules);
        foreach (var rule in DeepMemoryRule.Named.Values)
            foreach (int t in options.Lengths)
            {
                var chunk = Assert.Single(report.Rows, r => r.Rule == rule.Name && r.Form == "chunk" && r.T == t);
                Assert.Single(report.Rows, r => r.Rule == rule.Name && r.Form == "step" && r.T == t);
                foreach (var row in report.Rows.Where(r => r.Rule == rule.Name && r.T == t))
                {
                    // Timed at the longest length under the budget and scaled; the note says why exactly when it is shorter.
                    var form = row.Form == "chunk" ? KernelForm.Chunk : row.Form == "step" ? KernelForm.Step : KernelForm.Naive;
                    int cap = row.Form == "step" ? Math.Min(t, options.StepMaxLength) : t;
                    Assert.True(row.MeasuredT == cap || DeepKernelBench.Footprint(options, rule, form, 8,
                        row.MeasuredT * 2) > options.DeepMemoryBudgetBytes, $"{rule.Name} {row.Form} T={t}");
                    Assert.Equal(row.MeasuredT < cap, row.Note is not null);
                    Assert.Equal(row.MeasuredT != t, row.Extrapolated);
                    foreach (var m in new[] { row.Forward, row.ForwardBackward })
                        Assert.True(Sane(m.Ms) && Sane(m.Gflop) && Sane(m.FractionOfFp32Peak), $"{rule.Name} {row.Form} T={t}");
                }
                Assert.True(Sane(chunk.SpeedupOverStepForward!.Value) && Sane(chunk.SpeedupOverStepForwardBackward!.Value));
                Assert.Equal(KernelFlops.DeepChunkForward(rule, DeepKernelBench.Mlp(options, 8), 2, 2, t, 8) / 1e9,
                    chunk.Forward.Gflop, 12);
            }
        // The materialised rules (per-token weights) exceed the budget; the dual form's chunk does not at T = 16.
        Assert.Contains(report.Rows, r => r.Rule == "atlas" && r.Form == "chunk" && r.Note is not null);
        Assert.Contains(report.Rows, r => r.Rule == "titans" && r.Form == "chunk" && r.T == 16 && r.Note is null);
        Assert.Contains("dual form", report.FlopModel);
    }

    [Fact]
    public void Deep_flop_model_counts_the_chunk_and_step_matmuls()
    {
        // Depth 1 (P = D²), window 1, one chunk (T = C) in one block (b = C): GD dual form (yaad) 2b²·E + 2E·P + 2E·P
        // (end state) + 2b·P + 2b·E·2D, E = b.
        var mlp = new MemoryMlp(4, 4, 1, 0, MemoryActivation.Gelu, false);
        double c = 8, p = 16;
        Assert.Equal(8, DeepKernel.BlockSize(DeepMemoryRule.Named["memora"], mlp, 6, 8));
        Assert.Equal(2 * c * c * c + 2 * c * p + 2 * c * p + 2 * c * p + 2 * c * c * 8,
            KernelFlops.DeepChunkForward(DeepMemoryRule.Named["yaad"], mlp, 1, 1, 8, 8));
        // Softmax retention (memora): 2b²·E + 2E·P + end state 2E·P + per-token weights 2b·(1 + E)·P + read 2b·P;
        // linear in B·H, a partial chunk counts whole.
        double memora = 2 * c * c * c + 2 * c * p + 2 * c * p + 2 * c * (1 + c) * p + 2 * c * p;
        Assert.Equal(2 * 3 * 2 * memora, KernelFlops.DeepChunkForward(DeepMemoryRule.Named["memora"], mlp, 2, 3, 9, 8));
        // Step, atlas (window 4, Muon): per token 2c·P + 2c·P + 2·P + 5·(4·4²·4 + 2·4³).
        Assert.Equal(10.0 * (2 * 4 * p + 2 * 4 * p + 2 * p + 5 * (4 * 16 * 4 + 2 * 64)),
            KernelFlops.DeepRecurrentForward(DeepMemoryRule.Named["atlas"], mlp, 1, 1, 10));
    }

    [Fact]
    public void Quick_decode_bench_gives_a_row_per_kind_and_context_and_writes_json()
    {
        using var dir = new Tmp.Dir();
        var options = DecodeBenchOptions.Quick;
        var report = DecodeBenchmark.Run(options);
        report.WriteJson(dir["decode.json"]);
        // Each rule twice (the fused step decoding runs, and the composed one), then attention.
        Assert.Equal(options.Contexts.Length * (2 * BenchRule.Kernels.Length + 1), report.Rows.Length);
        Assert.All(BenchRule.Kernels, r => Assert.Contains(report.Rows, row => row.Kind == r.Name + DecodeBenchmark.ComposedSuffix));
        foreach (var row in report.Rows)
        {
            Assert.True(Sane(row.MsPerToken) && Sane(row.BestMsPerToken) && Sane(row.TokensPerSecond), $"{row.Kind} {row.Context}");
            Assert.True(row.BestMsPerToken <= row.MsPerToken && row.WorkingSetBytes > 0);
        }
        // A matrix memory's state has one size at every context; the KV cache grows with it.
        long d = options.Dim;
        Assert.All(report.Rows.Where(r => r.Kind != "attention"), r => Assert.Equal(4 * options.Heads * d * d, r.StateBytes));
        Assert.All(report.Rows.Where(r => r.Kind == "attention"), r => Assert.Equal(2 * 4 * options.Heads * r.Context * d, r.StateBytes));
        using var json = JsonDocument.Parse(File.ReadAllText(dir["decode.json"]));
        Assert.Equal(report.Rows.Length, json.RootElement.GetProperty("rows").GetArrayLength());
        Assert.Equal(BenchRule.Kernels.Length, json.RootElement.GetProperty("settings").GetProperty("rule_names").GetArrayLength());
    }

    [Fact]
    public void Measuring_leaves_no_live_tensors_behind()
    {
        // Every timed run has its own dispose scope and the inputs are disposed: a long bench must not grow memory.
        var o = KernelBenchOptions.Quick;
        KernelBenchmark.MeasureKernel(o, BenchRule.GatedDelta, KernelForm.Chunk, 8, 40); // warms up lazily created state
        static long Live() => TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var leaks = new List<string>();
        void Check(string what, Action a) { long b = Live(); a(); if (Live() != b) leaks.Add($"{what}: {Live() - b}"); }
        foreach (var rule in BenchRule.All)
            foreach (var form in new[] { KernelForm.Chunk, KernelForm.Step, KernelForm.Naive })
                Check($"{rule.Name} {form}", () => KernelBenchmark.MeasureKernel(o, rule, form, 8, 40));
        // D = 16: the fused kernels' path (FusedChunk), with their own autograd node
        Check("gated_delta fused chunk", () => KernelBenchmark.MeasureKernel(o, BenchRule.GatedDelta, KernelForm.Chunk, 16, 40));
        Check("gated_linear fused chunk", () => KernelBenchmark.MeasureKernel(o, BenchRule.GatedScalar, KernelForm.Chunk, 16, 40));
        foreach (var rule in DeepMemoryRule.Named.Values)
            Check($"{rule.Name} chunk", () => DeepKernelBench.Measure(o, rule, KernelForm.Chunk, 8, 20));
        Check("attention", () => KernelBenchmark.MeasureAttention(o, 8, 40));
        Check("peak", () => MatmulPeak.Measure(TorchSharp.torch.ScalarType.Float32, [64], repeats: 2));
        Check("decode", () => DecodeBenchmark.Run(DecodeBenchOptions.Quick with { Contexts = [64] }));
        Assert.True(leaks.Count == 0, string.Join("; ", leaks));
    }

    [Fact]
    public void Flop_model_counts_the_chunk_matmuls()
    {
        // One chunk (T = C = 64), B = H = 1, Dk = Dv = 64: gated linear 2C²(Dk+Dv) + 4C·Dk·Dv.
        Assert.Equal(2.0 * 64 * 64 * 128 + 4.0 * 64 * 64 * 64,
            KernelFlops.ChunkForward(MatrixKernelKind.GatedLinear, 1, 1, 64, 64, 64, 64));
        // Delta: 5C²Dk + 3C²Dv + 6C·Dk·Dv; a partial last chunk counts whole; linear in B·H.
        double one = 5.0 * 64 * 64 * 64 + 3.0 * 64 * 64 * 64 + 6.0 * 64 * 64 * 64;
        Assert.Equal(2 * 3 * 2 * one, KernelFlops.ChunkForward(MatrixKernelKind.Delta, 2, 3, 65, 64, 64, 64));
        Assert.Equal(4 * 4 * 2.0 * 1024 * 1024 * 64, KernelFlops.AttentionForward(4, 4, 1024, 64));
    }

    [Fact]
    public void Bench_kernels_rejects_an_unknown_rule_with_exit_code_2()
    {
        var (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), "bench", "kernels", "--quick", "--rules", "linear,nope");
        Assert.Equal(2, code);
        Assert.StartsWith("error: unknown rule \"nope\"", stderr);
        (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), "bench", "kernels", "--quick", "--rules", "none",
            "--deep-rules", "titans,nope");
        Assert.Equal(2, code);
        Assert.StartsWith("error: unknown deep rule \"nope\"", stderr);
    }

    [Fact]
    public void Bench_decode_reads_k_and_M_lengths_and_runs_quick()
    {
        using var dir = new Tmp.Dir();
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "bench", "decode", "--quick", "--contexts", "1k", "--rules", "gated_delta",
            "--json", "d.json");
        Assert.True(code == 0, stderr);
        Assert.Contains("gated_delta", stdout);
        using var json = JsonDocument.Parse(File.ReadAllText(dir["d.json"]));
        Assert.Equal(1024, json.RootElement.GetProperty("rows")[0].GetProperty("context").GetInt64());
        var bad = CliProcess.Run(dir.Path, "bench", "decode", "--quick", "--contexts", "2x");
        Assert.Equal(2, bad.ExitCode);
        Assert.StartsWith("error: --contexts", bad.Stderr);
    }
}

[Collection(TorchCollection.Name)]
public class ModelDecodeSmokeTests
{
    [Fact]
    public void Model_decode_keeps_the_memory_state_flat_and_the_kv_cache_growing()
    {
        var rows = Mnemo.Benchmarks.ModelDecodeBenchmark.Run([64, 256], tokens: 3, dModel: 16, layers: 2, heads: 2, _ => { });
        Assert.Equal(6, rows.Count);                                    // gated_delta_net, mamba2, attention × 2 contexts
        Assert.All(rows, r => Assert.True(r.MsPerToken > 0 && double.IsFinite(r.MsPerToken)));
        var attention = rows.Where(r => r.Model == "attention").ToList();
        foreach (var model in new[] { "gated_delta_net", "mamba2" })
        {
            var recurrent = rows.Where(r => r.Model == model).ToList();
            Assert.Equal(recurrent[0].CacheBytes, recurrent[1].CacheBytes); // O(1) in the context
            Assert.All(recurrent, r => Assert.True(r.PrefillTokensPerSecond > 0 && r.HeapReleases >= 0, model));
        }
        Assert.True(attention[1].CacheBytes > 3 * attention[0].CacheBytes); // grows with it
        Assert.All(attention, r => Assert.Null(r.PrefillTokensPerSecond));
        // serialisable (no NaN)
        Assert.Contains("\"fill\"", System.Text.Json.JsonSerializer.Serialize(rows, KernelBenchReport.JsonOptions));
    }
}

/// <summary>`mnemo bench train` times the trainer's own step; properties only (its numbers depend on the machine).</summary>
[Collection(TorchCollection.Name)]
public class TrainBenchSmokeTests
{
    // 2 layers of attention, d_model 16, no MLP: the only per-position 2-D weights are q, k, v, o (4·D² per layer).
    const string Tiny = """
        {
          "model": { "mixer": "attention", "d_model": 16, "num_layers": 2, "num_heads": 2, "mlp_ratio": 0 },
          "task": { "kind": "mqar", "vocab_size": 64, "train": [{ "seq_len": 32, "num_kv_pairs": 4, "num_examples": 64 }],
                    "test": [{ "seq_len": 32, "num_kv_pairs": 4, "num_examples": 16 }] },
          "training": { "batch_size": 8, "steps": 10, "warmup_steps": 1 }
        }
        """;

    [Fact]
    public void Every_mixer_gets_a_row_whose_phases_fit_in_its_step()
    {
        var config = Mnemo.Training.RunConfig.Parse(Tiny, "tiny");
        var report = TrainStepBenchmark.Run(config,
            new TrainBenchSettings("tiny", ["attention", "gated_delta_net"], [], 1, 2, [Precision.Fp32, Precision.Bf16]));
        Assert.Equal(["attention", "attention", "gated_delta_net", "gated_delta_net"], report.Rows.Select(r => r.Mixer));
        Assert.Equal([Precision.Fp32, Precision.Bf16, Precision.Fp32, Precision.Bf16], report.Rows.Select(r => r.Precision));
        Assert.NotNull(report.PeakBf16);
        Assert.Equal(Precision.Fp32, MixedPrecision.Current);                   // the bench's scope ended with it
        foreach (var r in report.Rows)
        {
            var fp32 = report.Rows.Single(f => f.Mixer == r.Mixer && f.Precision == Precision.Fp32);
            if (r.Precision == Precision.Bf16)
            {
                Assert.Equal(r.TokensPerSecond / fp32.TokensPerSecond, r.SpeedupOverFp32!.Value, 9);
                // Amdahl on the fp32 row's share of products at the peak, with the run's ratio of peaks.
                double f = fp32.FractionOfPeak, ratio = report.PeakBf16!.GflopPerSecond / report.PeakFp32.GflopPerSecond;
                Assert.Equal(1 / (1 - f + f / ratio), r.Bf16Estimate!.Value, 9);
            }
            else
            {
                Assert.Null(r.SpeedupOverFp32);
                Assert.Null(r.Bf16Estimate);
            }
        }
        foreach (var r in report.Rows)
        {
            Assert.Equal(8 * 32, r.TokensPerStep);
            Assert.True(r.ScoredPerStep is > 0 and < 8 * 32, $"{r.Mixer}: {r.ScoredPerStep} scored");
            Assert.True(r.StepMs > 0 && r.ForwardMs > 0 && r.BackwardMs > 0 && r.OptimizerMs > 0 && r.DataMs >= 0, r.Mixer);
            Assert.True(r.DataMs + r.ForwardMs + r.BackwardMs + r.OptimizerMs <= r.StepMs * 1.5, $"{r.Mixer}: phases exceed the step");
            Assert.Equal(r.DenseFlopsPerStep / (r.StepMs * 1e-3) / 1e9, r.DenseGflopPerSecond, 6);
            // The kernels' share is part of each phase.
            Assert.True(r.KernelForwardMs > 0 && r.KernelForwardMs < r.ForwardMs, $"{r.Mixer}: kernel forward {r.KernelForwardMs}");
            Assert.True(r.KernelBackwardMs > 0 && r.KernelBackwardMs < r.BackwardMs, $"{r.Mixer}: kernel backward {r.KernelBackwardMs}");
        }
        Assert.False(KernelClock.Enabled);
        // The FLOP model counts q, k, v, o of both layers at every position and the head at the scored ones.
        var attention = report.Rows[0];
        Assert.Equal(6.0 * 256 * (2 * 4 * 16 * 16) + 6.0 * attention.ScoredPerStep * 64 * 16, attention.DenseFlopsPerStep);
    }

    [Fact]
    public void The_bf16_estimate_is_amdahls_law_on_the_products_share()
    {
        Assert.Equal(1.0, TrainStepBenchmark.Bf16Estimate(0, 1.9), 12);            // no products: nothing to gain
        Assert.Equal(1.9, TrainStepBenchmark.Bf16Estimate(1, 1.9), 12);            // only products: their whole ratio
        Assert.Equal(1.9, TrainStepBenchmark.Bf16Estimate(1.2, 1.9), 12);          // a share over 1 (noise) counts as 1
        Assert.Equal(1 / (0.5 + 0.5 / 6.9), TrainStepBenchmark.Bf16Estimate(0.5, 6.9), 12);
        Assert.True(TrainStepBenchmark.Bf16Estimate(0.5, 1e9) < 2);               // half the step: under 2× however fast
    }

    [Fact]
    public void A_bad_mixer_fails_before_anything_is_timed()
    {
        var config = Mnemo.Training.RunConfig.Parse(Tiny, "tiny");
        var e = Assert.ThrowsAny<Exception>(() =>
            TrainStepBenchmark.Run(config, new TrainBenchSettings("tiny", ["nope"], [], 0, 1, [Precision.Fp32])));
        Assert.Contains("model.mixer", e.Message);
        var (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), "bench", "train", "--steps", "0");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --steps must be at least 1", stderr);
        (code, _, stderr) = CliProcess.Run(Path.GetTempPath(), "bench", "train", "--precisions", "fp16");
        Assert.Equal(2, code);
        Assert.StartsWith("error: unknown precision \"fp16\"; allowed: fp32, bf16", stderr);
    }
}
