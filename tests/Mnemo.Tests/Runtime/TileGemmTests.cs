using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Tests.Runtime;

/// <summary>The fused kernels' small products and transposes against libtorch's, in every layout they are called with.</summary>
[Collection(TorchCollection.Name)]
public unsafe class TileGemmTests
{
    static float* At(Tensor t) => FloatLanes.Address(t);

    [Theory]
    [InlineData(64, 64, 64, false, TileGemm.Shape.Full, TileGemm.Into.Set)]
    [InlineData(7, 33, 80, true, TileGemm.Shape.Full, TileGemm.Into.Add)]        // edge rows, 16-wide edge columns, Aᵀ
    [InlineData(64, 64, 48, false, TileGemm.Shape.Lower, TileGemm.Into.Subtract)]
    [InlineData(32, 32, 128, true, TileGemm.Shape.Upper, TileGemm.Into.Set)]     // (lower A)ᵀ is upper
    public void Products_equal_libtorch_matmul(int m, int k, int n, bool transposeA, TileGemm.Shape shape, TileGemm.Into into)
    {
        if (!TileGemm.Supported) return;                                           // no AVX-512: the fused kernels never run
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var a = randn([transposeA ? k : m, transposeA ? m : k], generator: gen);
        if (shape != TileGemm.Shape.Full) a = a.tril();                          // stored lower: op(A) lower, or upper when transposed
        var b = randn([k, n], generator: gen);
        var c = randn([m, n], generator: gen);
        var opA = transposeA ? a.t() : a;
        var expected = into switch
        {
            TileGemm.Into.Set => opA.matmul(b),
            TileGemm.Into.Add => c + opA.matmul(b),
            _ => c - opA.matmul(b),
        };
        var actual = c.clone();
        TileGemm.Multiply(At(actual), n, At(a), (int)a.shape[1], transposeA, At(b), n, m, k, n, into, shape);
        Assert.True(actual.allclose(expected, rtol: 1e-5, atol: 1e-5), $"max error {(actual - expected).abs().max().item<float>()}");
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(48, 80)]
    [InlineData(7, 9)]
    public void Transpose_equals_libtorch(int m, int n)
    {
        using var scope = NewDisposeScope();
        var src = randn([m, n + 3], generator: new Generator(5));                   // a row stride wider than the rows
        var dst = zeros(n, m + 1);
        TileGemm.Transpose(At(dst), m + 1, At(src), n + 3, m, n);
        Assert.True(dst.narrow(1, 0, m).eq(src.narrow(1, 0, n).t()).all().item<bool>());
    }
}
