using Mnemo.Experiments;
using Mnemo.Layers;
using Mnemo.Runtime;
using Mnemo.Tasks;
using Mnemo.Tests.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Experiments;

/// <summary>The leaky RNN against its equation, its constraints, the labels of both tasks, the curricula's heads, and a
/// short run of each curriculum.</summary>
[Collection(TorchCollection.Name)]
public class TimescalesTests
{
    [Fact]
    public void The_cell_is_the_leaky_update_written_out_with_no_self_connections()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        TorchRuntime.Seed(3);
        var rnn = new LeakyRnn(2, 5);
        rnn.to(float64);
        var p = rnn.named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter);
        var h0 = rnn.named_buffers().Single(b => b.name == "h0").buffer;
        var x = randn([3, 4, 2], float64, generator: new Generator(4));
        var actual = rnn.forward(x);
        var w = p["recurrent.weight"] * (1 - eye(5, dtype: float64));
        var tau = p["tau"];
        var h = h0.expand(3, -1);
        for (int t = 0; t < 4; t++)
        {
            var drive = x.select(1, t).matmul(p["input_proj.weight"].T) + p["input_proj.bias"];
            h = nn.functional.leaky_relu((1 - 1 / tau) * h + (h.matmul(w.T) + drive) / tau);
            Assert.True(Equivalence.RelativeRms(actual.select(1, t), h) <= 1e-12, $"step {t}");
        }
        Assert.Equal(0.0, p["recurrent.weight"].diagonal().abs().max().item<double>());   // zero from the start
        Assert.True(tau.min().item<double>() >= 1 && tau.max().item<double>() <= 2);    // 1 + U(0, 1)
    }

    [Fact]
    public void Timescales_are_clamped_at_one_and_silenced_neurons_stay_zero()
    {
        using var scope = NewDisposeScope();
        var rnn = new LeakyRnn(1, 6);
        using (no_grad()) rnn.Timescales.fill_(0.3);
        rnn.ClampTimescales();
        Assert.Equal(1.0, rnn.Timescales.min().item<float>());
        rnn.Ablation = tensor(new[] { true, false, false, true, false, false });
        var h = rnn.forward(ones(2, 7, 1));
        Assert.Equal(0.0, h.index_select(2, tensor(new long[] { 0, 3 })).abs().max().item<float>());
        Assert.True(h.index_select(2, tensor(new long[] { 1, 2 })).abs().max().item<float>() > 0);
    }

    [Fact]
    public void Labels_are_parity_of_the_last_n_bits_and_the_match_n_minus_1_steps_back()
    {
        using var scope = NewDisposeScope();
        var bits = tensor(new float[,] { { 1, 0, 1, 1, 0, 1 }, { 0, 1, 1, 0, 0, 0 } });
        long[] Labels(BitTaskKind task, int n) => Timescales.Label(task, bits, n).data<long>().ToArray();
        Assert.Equal([1L, 0L], Labels(BitTaskKind.Parity, 2));                         // 0 + 1, 0 + 0
        Assert.Equal([0L, 0L], Labels(BitTaskKind.Parity, 3));                         // 1 + 0 + 1, 0 + 0 + 0
        Assert.Equal([1L, 1L], Labels(BitTaskKind.Dms, 3));                            // x[−3] = x[−1] in both
        Assert.Equal([0L, 0L], Labels(BitTaskKind.Dms, 5));                            // 0 ≠ 1, 1 ≠ 0
    }

    [Fact]
    public void A_batch_has_one_length_in_the_papers_range_and_a_label_per_head()
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator(5);
        for (int i = 0; i < 20; i++)
        {
            var (bits, labels) = Timescales.Batch(BitTaskKind.Dms, 8, 5, [2, 3, 4, 5], gen);
            Assert.InRange(bits.shape[1], 7, 21);                                       // M ∈ [N + 2, 4N + 2)
            Assert.Equal(4, labels.Length);
            Assert.True(bits.eq(0).logical_or(bits.eq(1)).all().item<bool>());
        }
        Assert.Equal([5], Timescales.Heads(Curriculum.Single, 5));
        Assert.Equal([2, 3, 4, 5], Timescales.Heads(Curriculum.Multi, 5));
    }

    [Theory]
    [InlineData(Curriculum.Single)]
    [InlineData(Curriculum.Multi)]
    public void A_short_run_solves_the_first_ns_and_reports_every_head(Curriculum curriculum)
    {
        var c = new TimescalesConfig { Task = BitTaskKind.Dms, Units = 32, Batch = 64, Steps = 400, EpochSteps = 50, TestBatches = 2 };
        var run = Timescales.Run(curriculum, 1, c);
        Assert.True(run.LargestN >= 2, $"{curriculum}: solved nothing in 400 steps");
        Assert.Equal(run.LargestN - 1, run.SolvedAt.Length);
        Assert.Equal(run.LargestN - 1, run.FinalAccuracy.Length);                       // heads 2 … N
        Assert.Equal(7, run.Perturbations.Length);                                      // unperturbed, 3 ablations, 3 noise levels
        Assert.All(run.Perturbations, p => Assert.Equal(run.LargestN, p.N));
        Assert.True(run.Perturbations[0].Accuracy > 0.9);                                // the solved head, unperturbed
        Assert.All(run.Tau, t => Assert.True(t >= 1));
        var again = Timescales.Run(curriculum, 1, c);
        Assert.Equal(run.SolvedAt, again.SolvedAt);                                     // the same seed, the same run
        Assert.Equal(run.Tau, again.Tau);
    }
}
