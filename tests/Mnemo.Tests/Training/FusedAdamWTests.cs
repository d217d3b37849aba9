using Mnemo.Runtime;
using Mnemo.Tests.Memory;
using Mnemo.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Tests.Training;

/// <summary>The fused AdamW update against TorchSharp's <see cref="AdamW.step"/> on the same parameters and gradients.</summary>
[Collection(TorchCollection.Name)]
public class FusedAdamWTests
{
    /// <summary>
    /// Two parameter groups (weight decay 0.1 and 0), a parameter whose size is not a multiple of 16, one large enough to
    /// be split across threads, one without a gradient; six steps with the learning rate changing between them, so the
    /// bias corrections and the schedule both count. Parameters and both moments agree to 1e-6 relative RMS (fp32 with
    /// the same operations in the same order; only rounding inside libtorch's vector loops may differ), the step counts
    /// exactly, and the parameter without a gradient does not move.
    /// </summary>
    [Fact]
    public void The_fused_update_matches_torchsharps_adamw_step_by_step()
    {
        using var scope = NewDisposeScope();
        long[][] shapes = [[64, 48], [37], [300, 200], [5, 3]];
        var start = shapes.Select((s, i) => randn(s, generator: new Generator((ulong)(10 + i)))).ToArray();

        (Parameter[] Ps, AdamW Opt) Make()
        {
            var ps = start.Select(t => new Parameter(t.clone())).ToArray();
            var groups = new List<AdamW.ParamGroup>
            {
                new([ps[0], ps[2]], new AdamW.Options { weight_decay = 0.1 }),
                new([ps[1], ps[3]], new AdamW.Options { weight_decay = 0 }),
            };
            return (ps, optim.AdamW(groups, lr: 1e-2, beta1: 0.9, beta2: 0.95, weight_decay: 0.1));
        }
        var (fused, fusedOpt) = Make();
        var (reference, referenceOpt) = Make();
        using (fusedOpt)
        using (referenceOpt)
        {
            for (int step = 0; step < 6; step++)
            {
                foreach (var (opt, ps) in new[] { (fusedOpt, fused), (referenceOpt, reference) })
                {
                    foreach (var group in opt.ParamGroups) group.LearningRate = 1e-2 / (1 + step);
                    for (int i = 0; i < ps.Length; i++)
                        ps[i].grad = i == 3 ? null : randn(shapes[i], generator: new Generator((ulong)(100 * step + i)));
                }
                FusedAdamW.Step(fusedOpt);
                referenceOpt.step();
            }
            var (fs, rs) = (fusedOpt.state_dict().State, referenceOpt.state_dict().State);
            for (int i = 0; i < fused.Length; i++)
            {
                Assert.True(Equivalence.RelativeRms(fused[i], reference[i]) <= 1e-6,
                    $"parameter {i}: {Equivalence.RelativeRms(fused[i], reference[i]):E2}");
                var (f, r) = ((AdamW.State)fs[i], (AdamW.State)rs[i]);
                Assert.Equal(r.step, f.step);
                if (i == 3)
                {
                    Assert.Equal(0, f.step);
                    Assert.True(fused[i].eq(start[i]).all().item<bool>(), "a parameter without a gradient stays");
                    continue;
                }
                Assert.True(Equivalence.RelativeRms(f.exp_avg, r.exp_avg) <= 1e-6, $"exp_avg {i}");
                Assert.True(Equivalence.RelativeRms(f.exp_avg_sq, r.exp_avg_sq) <= 1e-6, $"exp_avg_sq {i}");
            }
        }
    }
}
