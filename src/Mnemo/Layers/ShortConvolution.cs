using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Depthwise causal 1-D convolution over time with SiLU (fla's ShortConvolution; parameter "weight" [D, 1, K]).
/// Output t sees inputs t−K+1 … t only. Zoology pairs every mixer with one: it hands each position its
/// predecessors, which is what a recall circuit needs (a value must know the key before it).
/// </summary>
public sealed class ShortConvolution : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter? bias;
    readonly long _kernel;

    public ShortConvolution(long channels, long kernel, bool hasBias = false) : base(nameof(ShortConvolution))
    {
        _kernel = kernel;
        // PyTorch's Conv1d default: U(−b, b) with b = 1/sqrt(fan_in), fan_in = K for a depthwise filter.
        double bound = 1.0 / Math.Sqrt(kernel);
        weight = nn.Parameter(empty(channels, 1, kernel).uniform_(-bound, bound));
        if (hasBias) bias = nn.Parameter(empty(channels).uniform_(-bound, bound));
        RegisterComponents();
    }

    /// <param name="x">[B, T, D]</param>
    /// <returns>[B, T, D]</returns>
    public override Tensor forward(Tensor x) => Forward(x, null, "");

    /// <summary>
    /// Streaming form: the last K−1 inputs of the previous call (cache entry <paramref name="key"/>) stand in for
    /// the zero padding, so calling twice equals calling once on the concatenation.
    /// </summary>
    public Tensor Forward(Tensor x, LayerCache? cache, string key)
    {
        using var scope = NewDisposeScope();
        var xt = x.transpose(1, 2);                                            // [B, D, T]
        var tail = cache?.Get(key);                                            // [B, D, K−1] or none
        var padded = tail is null ? nn.functional.pad(xt, [_kernel - 1, 0]) : cat([tail.to(xt.dtype), xt], 2); // [B, D, T+K−1]
        if (cache is not null) cache.Set(key, padded.narrow(2, padded.shape[2] - (_kernel - 1), _kernel - 1));
        var y = nn.functional.conv1d(padded, weight, bias, groups: weight.shape[0]); // [B, D, T]
        return nn.functional.silu(y).transpose(1, 2).MoveToOuterDisposeScope();
    }
}
