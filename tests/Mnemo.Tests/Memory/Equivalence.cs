using Mnemo.Memory.Matrix;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Memory;

/// <summary>
/// The equivalence harness every memory rule's tests use: run two forms on the same leaves, compare outputs,
/// final states and the gradients of sum(o·dO) + sum(S_T·dS) with respect to every input and the initial state,
/// by relative RMS error.
/// </summary>
public static class Equivalence
{
    /// <summary>‖a − b‖_rms / ‖b‖_rms (b is the reference); 0 when both are zero.</summary>
    public static double RelativeRms(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var a64 = a.detach().to(float64);
        var b64 = b.detach().to(float64);
        double err = (a64 - b64).square().mean().sqrt().item<double>();
        double norm = b64.square().mean().sqrt().item<double>();
        return norm == 0 ? err : err / norm;
    }

    /// <summary>Named leaves (requires_grad) a form is run on.</summary>
    public sealed class Leaves : IDisposable
    {
        public Dictionary<string, Tensor> Tensors { get; } = [];
        public Tensor? this[string name] => Tensors.GetValueOrDefault(name);

        /// <summary>A detached copy in another dtype (still leaves), so fp32 forms can be checked against fp64.</summary>
        public Leaves To(ScalarType dtype)
        {
            var copy = new Leaves();
            foreach (var (name, t) in Tensors) copy.Tensors[name] = t.detach().to(dtype).requires_grad_(true);
            return copy;
        }

        public void Dispose()
        {
            foreach (var t in Tensors.Values) t.Dispose();
        }
    }

    /// <summary>Outputs, final state and the gradient of every leaf.</summary>
    public sealed record Result(Tensor O, Tensor State, Dictionary<string, Tensor> Grads);

    /// <summary>Runs a form and backpropagates sum(o·dO) + sum(S·dS) with fixed cotangents.</summary>
    public static Result Run(Leaves leaves, Func<Leaves, (Tensor O, Tensor State)> form, Tensor dO, Tensor dS)
    {
        foreach (var t in leaves.Tensors.Values) t.grad?.zero_();
        var (o, s) = form(leaves);
        var loss = (o * dO.to(o.dtype)).sum() + (s * dS.to(s.dtype)).sum();
        loss.backward();
        var grads = leaves.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.grad!.detach().clone());
        return new Result(o.detach(), s.detach(), grads);
    }

    /// <summary>The step and chunk forms of a rule against its naive reference (<paramref name="form"/> gives each form),
    /// outputs, final state and every gradient within <paramref name="tolerance"/>.</summary>
    public static void AssertFormsAgree(Leaves x, Func<KernelForm, Func<Leaves, (Tensor O, Tensor State)>> form, Tensor dO, Tensor dS,
        double tolerance, string label)
    {
        var naive = Run(x, form(KernelForm.Naive), dO, dS);
        AssertClose(naive, Run(x, form(KernelForm.Chunk), dO, dS), tolerance, label + " chunk");
        AssertClose(naive, Run(x, form(KernelForm.Step), dO, dS), tolerance, label + " step");
    }

    /// <summary>
    /// The tolerance of an fp32 form against the fp64 reference: 1e-5, or twice the fp32 naive loop's own worst error
    /// (<paramref name="naive32"/>) where the caller knows the rule is ill-conditioned in fp32 whatever the form. Where it
    /// is not, the naive loop itself must be within 1e-5, so the looser bound cannot hide a loss of accuracy.
    /// </summary>
    public static double Fp32Tolerance(Result reference, Result naive32, bool illConditioned)
    {
        double naive = WorstRelativeRms(reference, naive32);
        Assert.True(illConditioned || naive <= 1e-5, $"the fp32 naive loop is off by {naive:E2} where the rule is well conditioned");
        return Math.Max(1e-5, 2 * naive);
    }

    /// <summary>The largest relative RMS error over outputs, final state and every gradient.</summary>
    public static double WorstRelativeRms(Result reference, Result actual) =>
        reference.Grads.Select(kv => RelativeRms(actual.Grads[kv.Key], kv.Value))
            .Append(RelativeRms(actual.O, reference.O)).Append(RelativeRms(actual.State, reference.State)).Max();

    /// <summary>Asserts every output, state and gradient of <paramref name="actual"/> is within tol of the reference.</summary>
    public static void AssertClose(Result reference, Result actual, double tolerance, string label, double? gradientTolerance = null)
    {
        var failures = new List<string>();
        void Check(string what, Tensor a, Tensor b)
        {
            double e = RelativeRms(a, b);
            if (!(e <= tolerance)) failures.Add($"{what}: relative RMS {e:E2} > {tolerance:E0}");
        }
        Check("o", actual.O, reference.O);
        Check("state", actual.State, reference.State);
        foreach (var (name, g) in reference.Grads)
        {
            double e = RelativeRms(actual.Grads[name], g), tol = gradientTolerance ?? tolerance;
            if (!(e <= tol)) failures.Add($"d{name}: relative RMS {e:E2} > {tol:E0}");
        }
        Assert.True(failures.Count == 0, $"{label}: {string.Join("; ", failures)}");
    }
}
