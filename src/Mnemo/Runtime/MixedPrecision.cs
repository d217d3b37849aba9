using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>The dtype a model's matrix products run in (<c>training.precision</c>).</summary>
public enum Precision
{
    /// <summary>Everything in fp32 (the default).</summary>
    Fp32,

    /// <summary>
    /// Matrix products of fp32 tensors take bf16 operands (libtorch accumulates them in fp32) and return fp32; weights,
    /// memory states, gates, norms, the loss and the optimizer stay fp32 (docs/architecture.md#bf16-matmuls).
    /// </summary>
    Bf16,
}

/// <summary>
/// Which <see cref="Precision"/> the matrix products on this thread use, set for a stretch of code as PyTorch's autocast
/// is: <c>using (MixedPrecision.Enter(Precision.Bf16)) { forward; }</c>. Only the products that call <see cref="Linear"/>,
/// <see cref="Operand"/> or <see cref="MatMul"/> change; everything else computes as written. Backward needs no scope:
/// the casts are autograd nodes, so each product's gradients are bf16 products too and arrive in fp32.
/// </summary>
public static class MixedPrecision
{
    [ThreadStatic] static Precision _current;

    /// <summary>The precision of this thread's matrix products now.</summary>
    public static Precision Current => _current;

    /// <summary>Sets <paramref name="precision"/> until the returned scope is disposed (then restores the one before).</summary>
    public static Scope Enter(Precision precision)
    {
        var previous = _current;
        _current = precision;
        return new Scope(previous);
    }

    /// <summary>x as an operand of a matrix product: bf16 under <see cref="Precision.Bf16"/> if it is fp32; unchanged
    /// otherwise (fp64 tests and integer tensors never change).</summary>
    public static Tensor Operand(Tensor x) =>
        _current == Precision.Bf16 && x.dtype == ScalarType.Float32 ? x.to(ScalarType.BFloat16) : x;

    /// <summary>A product's result back in fp32 when its operands were cast.</summary>
    public static Tensor Result(Tensor y) => y.dtype == ScalarType.BFloat16 ? y.to(ScalarType.Float32) : y;

    /// <summary>x Wᵀ + b at this thread's precision; the bias is added in fp32.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        if (_current == Precision.Fp32 || x.dtype != ScalarType.Float32) return nn.functional.linear(x, weight, bias);
        using var scope = NewDisposeScope();
        var y = Result(nn.functional.linear(Operand(x), Operand(weight)));
        return (bias is null ? y : y + bias).MoveToOuterDisposeScope();
    }

    /// <summary>a @ b at this thread's precision.</summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (_current == Precision.Fp32 || a.dtype != ScalarType.Float32) return a.matmul(b);
        using var scope = NewDisposeScope();
        return Result(Operand(a).matmul(Operand(b))).MoveToOuterDisposeScope();
    }

    /// <summary>Restores the precision that was current before <see cref="Enter"/>.</summary>
    public readonly struct Scope(Precision previous) : IDisposable
    {
        public void Dispose() => _current = previous;
    }
}
