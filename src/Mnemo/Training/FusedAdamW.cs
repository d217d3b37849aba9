using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Mnemo.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static Mnemo.Runtime.FloatLanes;
using static TorchSharp.torch;

namespace Mnemo.Training;

/// <summary>
/// AdamW's update (Loshchilov and Hutter 2019; docs/architecture.md#the-optimizer-step) as one pass over each parameter,
/// on the state TorchSharp's <see cref="AdamW"/> keeps (its moments and step counts, so checkpoints and
/// <c>optimizer.state_dict()</c> are unchanged): with bias corrections c₁ = 1 − β₁ˢ, c₂ = 1 − β₂ˢ at the
/// parameter's step s,
/// <code>
///   θ ← θ (1 − η λ);  m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;
///   θ ← θ − (η / c₁) m / (√v / √c₂ + ε)
/// </code>
/// which is <see cref="AdamW.step"/>'s arithmetic in the same order. That one runs it as about ten libtorch operations per
/// parameter, temporaries included; a small model's step has a few dozen parameters, and those operations' overhead was
/// most of the optimizer's time. fp32 CPU parameters with contiguous gradients on a CPU with AVX-512; anything else
/// (and amsgrad or maximize) goes to <see cref="AdamW.step"/>, which the tests compare this with.
/// </summary>
static unsafe class FusedAdamW
{
    const int Lanes = TileGemm.Lanes;

    /// <summary>Elements per work item: a large parameter's update is split across libtorch's threads.</summary>
    const int Block = 1 << 15;

    /// <summary>One update of every parameter with a gradient, as <paramref name="optimizer"/>.step() would make it (which
    /// runs it when the optimizer is not AdamW or the fused update does not apply).</summary>
    public static void Step(optim.Optimizer optimizer)
    {
        if (optimizer is not AdamW adamw || !Applies(adamw))
        {
            optimizer.step();
            return;
        }
        using var noGrad = no_grad();
        var states = adamw.state_dict().State;                   // in parameter-group order, as the groups list them
        int index = 0;
        foreach (var group in adamw.ParamGroups.Cast<ParamGroup>())
        {
            var o = (AdamW.Options)group.Options;
            foreach (var parameter in group.Parameters)
            {
                var state = (AdamW.State)states[index++];
                using var grad = parameter.grad;
                if (grad is not null) Update(parameter, grad, state, o);
            }
        }
    }

    /// <summary>Whether every parameter and option suits the fused update.</summary>
    static bool Applies(AdamW optimizer) => TileGemm.Supported && optimizer.ParamGroups.Cast<ParamGroup>().All(group =>
        group.Options is AdamW.Options { amsgrad: false, maximize: false }
        && group.Parameters.All(p =>
        {
            using var grad = p.grad;
            return p.device_type == DeviceType.CPU && p.dtype == ScalarType.Float32 && p.is_contiguous()
                && (grad is null || grad.dtype == ScalarType.Float32 && grad.is_contiguous());
        }));

    static void Update(Parameter parameter, Tensor grad, AdamW.State state, AdamW.Options o)
    {
        state.step += 1;
        double lr = o.LearningRate!.Value, beta1 = o.beta1!.Value, beta2 = o.beta2!.Value;
        var rule = new Rule
        {
            Theta = Address(parameter), Grad = Address(grad), M = Address(state.exp_avg), V = Address(state.exp_avg_sq),
            Decay = (float)(1 - lr * o.weight_decay!.Value),
            Beta1 = (float)beta1, OneMinusBeta1 = (float)(1 - beta1), Beta2 = (float)beta2, OneMinusBeta2 = (float)(1 - beta2),
            RootC2 = (float)Math.Sqrt(1 - Math.Pow(beta2, state.step)), Eps = (float)o.eps!.Value,
            Step = (float)(-lr / (1 - Math.Pow(beta1, state.step))),
        };
        long n = parameter.numel();
        if (n <= Block) rule.Apply(0, (int)n);
        else
            CoreTeam.For((int)((n + Block - 1) / Block),
                item => rule.Apply((long)item * Block, (int)Math.Min(Block, n - (long)item * Block)));
    }

    /// <summary>One parameter's addresses and the step's constants, in fp32 as libtorch's ops take their scalars.</summary>
    sealed class Rule
    {
        public float* Theta, Grad, M, V;
        public float Decay, Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, RootC2, Eps, Step;

        /// <summary>Elements [from, from + count).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Apply(long from, int count)
        {
            float* theta = Theta + from, g = Grad + from, m = M + from, v = V + from;
            int i = 0;
            for (; i + Lanes <= count; i += Lanes)
            {
                var gi = Vector512.Load(g + i);
                var mi = Vector512.Load(m + i) * Beta1 + gi * OneMinusBeta1;
                var vi = Vector512.Load(v + i) * Beta2 + gi * gi * OneMinusBeta2;
                var denom = Vector512.Sqrt(vi) / RootC2 + Vector512.Create(Eps);
                (Vector512.Load(theta + i) * Decay + mi / denom * Step).Store(theta + i);
                mi.Store(m + i);
                vi.Store(v + i);
            }
            for (; i < count; i++)
            {
                float gi = g[i], mi = m[i] * Beta1 + gi * OneMinusBeta1, vi = v[i] * Beta2 + gi * gi * OneMinusBeta2;
                theta[i] = theta[i] * Decay + mi / (MathF.Sqrt(vi) / RootC2 + Eps) * Step;
                (m[i], v[i]) = (mi, vi);
            }
        }
    }
}
