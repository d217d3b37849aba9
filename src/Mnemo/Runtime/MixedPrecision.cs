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
    [ThreadStatic] static bool _bf16Attention;

    /// <summary>Whether this CPU has AMX tiles, read once.</summary>
    static readonly Lazy<bool> AmxHere = new(() => CpuFeatures.Read().AmxBf16);

    /// <summary>The precision of this thread's matrix products now.</summary>
    public static Precision Current => _current;

    /// <summary>Sets <paramref name="precision"/> until the returned scope is disposed (then restores the one before).</summary>
    /// <param name="bf16Attention">under <see cref="Precision.Bf16"/>, whether libtorch's attention kernel takes bf16
    /// operands too (<see cref="AttentionOperand"/>); null = only on a CPU with AMX tiles</param>
    public static Scope Enter(Precision precision, bool? bf16Attention = null)
    {
        var previous = new Scope(_current, _bf16Attention);
        _current = precision;
        _bf16Attention = precision == Precision.Bf16 && (bf16Attention ?? AmxHere.Value);
        return previous;
    }

    /// <summary>Whether libtorch's attention kernel runs on bf16 operands in this scope.</summary>
    public static bool Bf16Attention => _bf16Attention;

    /// <summary>x as an operand of a matrix product: bf16 under <see cref="Precision.Bf16"/> if it is fp32; unchanged
    /// otherwise (fp64 tests and integer tensors never change).</summary>
    public static Tensor Operand(Tensor x) =>
        _current == Precision.Bf16 && x.dtype == ScalarType.Float32 ? x.to(ScalarType.BFloat16) : x;

    /// <summary>
    /// q, k or v of libtorch's attention kernel (scaled_dot_product_attention): <see cref="Operand"/> when
    /// <see cref="Bf16Attention"/>, else unchanged. Without AMX, libtorch's bf16 attention backward ran 1.2–10× slower
    /// than its fp32 one at T ≤ 1,024 (docs/architecture.md#bf16-matmuls), so there the attention stays fp32.
    /// </summary>
    public static Tensor AttentionOperand(Tensor x) => _bf16Attention ? Operand(x) : x;

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
    public readonly struct Scope(Precision previous, bool previousBf16Attention) : IDisposable
    {
        public void Dispose() => (_current, _bf16Attention) = (previous, previousBf16Attention);
    }
}
