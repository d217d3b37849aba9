using System.Text.Json.Nodes;
using Mnemo.Experiments;
using Mnemo.Layers;
using Mnemo.Tests.Cli;
using Mnemo.Tests.Memory;
using Mnemo.Tests.Models;
using Mnemo.Tests.Training;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Experiments;

/// <summary>Retrieval heads: the recorded attention weights, head masking, the copy-event arithmetic and `mnemo heads`.</summary>
[Collection(TorchCollection.Name)]
public class RetrievalHeadsTests
{
    [Theory]
    [InlineData(0, true)]
    [InlineData(3, false)]
    public void Recorded_weights_are_the_causal_softmax_that_sdpa_applies(int window, bool shortConv)
    {
        using var scope = NewDisposeScope();
        var c = TinyModels.Config(MixerKind.Attention, m => m with { ShortConv = shortConv, Attention = new() { Window = window } });
        var model = TinyModels.Build(c);
        var (_, attention) = model.MixersOf<Attention>()[0];
        var x = randn([2, 9, 16], float64, generator: new Generator(3));
        attention.RecordWeights = true;
        var y = attention.forward(x);
        var w = attention.Weights!;                                                   // [B, H, T, T]
        Assert.True(Equivalence.RelativeRms(w.sum(-1), ones(2, 2, 9, dtype: float64)) <= 1e-6, "rows sum to 1");
        Assert.Equal(0.0, w.triu(1).abs().max().item<double>());                    // causal
        if (window > 0) Assert.Equal(0.0, w.tril(-window).abs().max().item<double>());
        var (_, _, v) = attention.Project(x, null, 0);                              // [B, H, T, Dh]
        var manual = attention.Output(w.to(float64).matmul(v));
        Assert.True(Equivalence.RelativeRms(manual, y) <= 1e-6, "weights · V through o_proj = the layer's output");
        attention.RecordWeights = false;
        Assert.Null(attention.Weights);
    }

    [Fact]
    public void A_head_mask_removes_exactly_that_heads_output()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Build(TinyModels.Config(MixerKind.Attention));
        var (_, attention) = model.MixersOf<Attention>()[0];
        var x = randn([2, 7, 16], float64, generator: new Generator(4));
        var full = attention.forward(x);
        attention.RecordWeights = true;
        attention.HeadMask = tensor(new double[] { 1, 1 });
        Assert.True(Equivalence.RelativeRms(attention.forward(x), full) <= 1e-14, "all kept");
        attention.HeadMask = tensor(new double[] { 0, 1 });
        var masked = attention.forward(x);
        var (_, _, v) = attention.Project(x, null, 0);
        var o = attention.Weights!.matmul(v);
        o.select(1, 0).zero_();
        Assert.True(Equivalence.RelativeRms(masked, attention.Output(o)) <= 1e-6, "head 0 removed");
        attention.HeadMask = null;
        attention.RecordWeights = false;
    }

    [Fact]
    public void A_head_retrieves_at_a_copy_event_when_its_strongest_weight_is_on_an_earlier_copy_of_the_label()
    {
        using var scope = NewDisposeScope();
        var inputs = tensor(new long[,] { { 5, 7, 9, 7 }, { 1, 2, 3, 4 } });          // [B = 2, T = 4]
        // Scored: row 0 at 3 (label 9, seen at 2), row 0 at 1 (label 7, not seen before 1), row 1 at 3 (label 2, seen at 1).
        var row = tensor(new long[] { 0, 0, 1 });
        var position = tensor(new long[] { 3, 1, 3 });
        var target = tensor(new long[] { 9, 7, 2 });
        var predicted = tensor(new long[] { 9, 7, 3 });                               // the last one is wrong
        var copy = RetrievalHeads.CopyEvents(inputs, row, position, target, predicted);
        Assert.Equal([true, false, false], copy.data<bool>().ToArray());
        var weights = zeros(2, 3, 4, 4);                                               // [B, H = 3, T, T]
        weights[0, 0, 3, 2].fill_(1);                                                      // head 0: on the 9 at 2 → retrieves
        weights[0, 1, 3, 1].fill_(1);                                                      // head 1: on a 7 → does not
        weights[0, 2, 3, 3].fill_(1);                                                      // head 2: on itself → does not
        weights[0, 0, 1, 1].fill_(1);                                                // not copy events: never counted
        weights[1, 0, 3, 1].fill_(1);
        Assert.Equal([1.0, 0, 0], RetrievalHeads.Hits(inputs, row, position, target, copy, weights));
    }

    [Fact]
    public void Heads_writes_scores_and_the_ablation_for_a_trained_attention_model()
    {
        using var dir = new Tmp.Dir();
        var run = Path.Combine(dir.Path, "run");
        new Trainer(TrainerTests.Tiny(steps: 4), run).Run(resume: false);
        var (code, stdout, stderr) = CliProcess.Run(dir.Path, "heads", "--checkpoint", run, "--top", "1", "--draws", "2",
            "--examples", "16");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        string heads = Path.Combine(Checkpoint.Resolve(run), "heads");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(heads, "heads.json")))!;
        Assert.Single(json["layers"]!.AsArray());
        Assert.Equal(2, json["scores"]![0]!.AsArray().Count);
        // Two heads: after the top one only one other head is left, so only one distinct random set of the two asked for.
        Assert.Equal(["none", "top 1", "random 1 #1"], json["ablation"]!.AsArray().Select(a => (string)a!["name"]!));
        Assert.True(File.Exists(Path.Combine(heads, "heads.png")));

        var bad = CliProcess.Run(dir.Path, "heads", "--checkpoint", run, "--top", "2");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--top 2: must be between 1 and 1", bad.Stderr);
    }
}
