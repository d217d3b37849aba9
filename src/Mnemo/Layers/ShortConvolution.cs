using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Depthwise causal 1-D convolution over time with SiLU (fla's ShortConvolution; parameter "weight" [D, 1, K]).
/// Output t sees inputs t−K+1 … t only. Zoology pairs every mixer with one: it hands each position its
/// predecessors, which is what a recall circuit needs (a value must know the key before it).
/// <para>It runs as K shifted multiply-adds on the [B, T, D] layout the projections produce, not through libtorch's
/// conv1d: conv1d wants [B, D, T] (two transposes and a copy) and its depthwise backward is slow on CPU. Forward and
/// backward of one convolution with its SiLU at B = 64, T = 64, D = 64 on 2 threads took 4.0 ms through conv1d and
/// 2.3 ms this way; at T = 512, 35 and 22 ms (docs/benchmarks.md#bench-train-whole-training-steps). From the zero state in
/// fp32 it runs as one fused node (<see cref="FusedConvolution"/>); these ops are its reference and every other case.</para>
/// </summary>
public sealed class ShortConvolution : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter? bias;

    public ShortConvolution(long channels, long kernel, bool hasBias = false) : base(nameof(ShortConvolution))
    {
        // PyTorch's Conv1d default: U(−b, b) with b = 1/sqrt(fan_in), fan_in = K for a depthwise filter.
        double bound = 1.0 / Math.Sqrt(kernel);
        weight = nn.Parameter(empty(channels, 1, kernel).uniform_(-bound, bound));
        if (hasBias) bias = nn.Parameter(empty(channels).uniform_(-bound, bound));
        RegisterComponents();
    }

    /// <param name="x">[B, T, D]</param>
    /// <returns>[B, T, D]</returns>
    public override Tensor forward(Tensor x) => Forward(x, null, "");

    public Parameter Weight => weight;

    public Parameter? Bias => bias;

    /// <summary>
    /// Streaming form: the last K−1 inputs of the previous call (cache entry <paramref name="key"/>) stand in for
    /// the zero padding, so calling twice equals calling once on the concatenation.
    /// </summary>
    public Tensor Forward(Tensor x, LayerCache? cache, string key) => Convolve(x, weight, bias, cache, key);

    /// <summary>
    /// The convolution of x [B, T, C] with taps <paramref name="weight"/> [C, 1, K] (and a bias [C]), then SiLU; every
    /// channel on its own, so several convolutions of one kernel size run as one over their channels side by side. Channels
    /// of x beyond the taps' (x [B, T, C + P]) pass through unchanged; the cache keeps the convolved ones only.
    /// </summary>
    public static Tensor Convolve(Tensor x, Tensor weight, Tensor? bias, LayerCache? cache, string key)
    {
        using var scope = NewDisposeScope();
        long t = x.shape[1], kernel = weight.shape[2], channels = weight.shape[0], passed = x.shape[2] - channels;
        var tail = cache?.Get(key);                                            // [B, K−1, C] or none
        if (passed > 0 && !(tail is null && FusedConvolution.Applies(x, weight, bias)))
            return cat([Convolve(x.narrow(-1, 0, channels), weight, bias, cache, key), x.narrow(-1, channels, passed)], -1)
                .MoveToOuterDisposeScope();
        var taps = weight.squeeze(1).t();                                      // [K, C]
        Tensor y;
        if (t == 1 && tail is not null)
        {
            // One streamed token: the window of the last K inputs times the taps, summed (3 operations, not 2K).
            var window = cat([tail.to(x.dtype), x], 1);                        // [B, K, C]
            cache!.Set(key, window.narrow(1, 1, kernel - 1));
            y = (window * taps).sum(1, keepdim: true);
            if (bias is not null) y = y + bias;
        }
        else if (tail is null && FusedConvolution.Applies(x, weight, bias))
        {
            // From the zero state: one fused node (FusedConvolution); a stream keeps the last K − 1 inputs.
            if (cache is not null) cache.Set(key, LastInputs(x.narrow(-1, 0, channels), kernel - 1));
            return FusedConvolution.Convolve(x, weight, bias).MoveToOuterDisposeScope();
        }
        else
        {
            var padded = tail is null ? nn.functional.pad(x, [0, 0, kernel - 1, 0]) : cat([tail.to(x.dtype), x], 1); // [B, T+K−1, C]
            if (cache is not null) cache.Set(key, padded.narrow(1, padded.shape[1] - (kernel - 1), kernel - 1));
            // y_t = b + Σ_j w[:, 0, j] ⊙ x_{t−K+1+j}: tap j reads the padded input shifted by j.
            y = bias is null ? padded.narrow(1, 0, t) * taps[0] : bias.addcmul(padded.narrow(1, 0, t), taps[0], 1);
            for (int j = 1; j < kernel; j++) y = y.addcmul(padded.narrow(1, j, t), taps[j], 1);
        }
        return nn.functional.silu(y).MoveToOuterDisposeScope();
    }

    /// <summary>The last n inputs of x [B, T, C] as a stream carries them, zeros before the start: [B, n, C].</summary>
    static Tensor LastInputs(Tensor x, long n)
    {
        long t = x.shape[1];
        return t >= n ? x.narrow(1, t - n, n) : nn.functional.pad(x, [0, 0, n - t, 0]);
    }
}
