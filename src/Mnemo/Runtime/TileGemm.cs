using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using V = System.Runtime.Intrinsics.Vector512<float>;

namespace Mnemo.Runtime;

/// <summary>
/// Small dense products on fp32 rows held in AVX-512 registers, for the fused chunk kernels
/// (docs/benchmarks.md#the-fused-chunk-kernels): C (=, +=, −=) op(A) B with A [m × k] (or Aᵀ stored [k × m]) and
/// B [k × n], every matrix row-major with its own row stride, n a multiple of 16. A chunk's tiles are 64 × 64 and stay
/// in cache; at that size one call through libtorch costs more than the product, and batching chunks through libtorch
/// means full-size temporaries instead. The inner loop keeps a 4 × 64 block of C in 16 registers and adds
/// A_ip · B_p (a broadcast times four vectors of B's row p) for every p, the usual register-blocked shape.
/// </summary>
public static unsafe class TileGemm
{
    /// <summary>Floats in a Vector512: n must be a multiple of it.</summary>
    public const int Lanes = 16;

    /// <summary>Whether this CPU runs Vector512 in hardware (AVX-512); the fused kernels need it.</summary>
    public static bool Supported => Vector512.IsHardwareAccelerated;

    /// <summary>How the product meets C.</summary>
    public enum Into { Set, Add, Subtract }

    /// <summary>Which entries of op(A) may be nonzero: all, those with p ≤ i (lower-triangular) or p ≥ i (upper).</summary>
    public enum Shape { Full, Lower, Upper }

    /// <summary>
    /// C (=, +=, −=) op(A) B: op(A)_ip = a[i·lda + p], or a[p·lda + i] with <paramref name="transposeA"/>; B_pj = b[p·ldb + j];
    /// C_ij = c[i·ldc + j]. <paramref name="shape"/> skips the zero half of a triangular op(A).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(float* c, int ldc, float* a, int lda, bool transposeA, float* b, int ldb, int m, int k, int n,
        Into into, Shape shape = Shape.Full)
    {
        if (n % Lanes != 0) throw new ArgumentException($"n = {n} is not a multiple of {Lanes}");
        int rowStep = transposeA ? 1 : lda, colStep = transposeA ? lda : 1;   // op(A)_ip = a[i·rowStep + p·colStep]
        for (int j = 0; j < n; j += 4 * Lanes)
        {
            int width = Math.Min(4 * Lanes, n - j);
            for (int i = 0; i < m; i += 4)
            {
                int rows = Math.Min(4, m - i);
                // the p range where op(A)'s rows i … i + rows − 1 can be nonzero
                int from = shape == Shape.Upper ? i : 0, to = shape == Shape.Lower ? Math.Min(k, i + rows) : k;
                float* ai = a + i * rowStep, cij = c + i * ldc + j, bj = b + j;
                if (rows == 4 && width == 4 * Lanes) Block4x64(cij, ldc, ai, rowStep, colStep, bj, ldb, from, to, into);
                else if (rows == 4)
                    for (int w = 0; w < width; w += Lanes)
                        Block4x16(cij + w, ldc, ai, rowStep, colStep, bj + w, ldb, from, to, into);
                else
                    for (int r = 0; r < rows; r++)
                        for (int w = 0; w < width; w += Lanes)
                            Row16(cij + r * ldc + w, ai + r * rowStep, colStep, bj + w, ldb, from, to, into);
            }
        }
    }

    /// <summary>dst[j·ldd + i] = src[i·lds + j] for an m × n source: in 16 × 16 blocks in registers when both sides are
    /// multiples of 16 (a scalar transpose writes down columns, and costs as much as a 64 × 64 product).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose(float* dst, int ldd, float* src, int lds, int m, int n)
    {
        if (m % Lanes == 0 && n % Lanes == 0 && Avx512F.IsSupported)
        {
            for (int i = 0; i < m; i += Lanes)
                for (int j = 0; j < n; j += Lanes)
                    Transpose16(dst + j * ldd + i, ldd, src + i * lds + j, lds);
            return;
        }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                dst[j * ldd + i] = src[i * lds + j];
    }

    /// <summary>
    /// A 16 × 16 block: interleave row pairs (32-bit, then 64-bit, within each 128-bit lane), after which register
    /// 4g + m holds, in lane L, rows 4g … 4g + 3 of column 4L + m; two rounds of 128-bit lane shuffles then gather each
    /// column's four lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Transpose16(float* dst, int ldd, float* src, int lds)
    {
        var r = stackalloc Vector512<float>[Lanes];
        for (int i = 0; i < Lanes; i += 2)
        {
            V a = Vector512.Load(src + i * lds), b = Vector512.Load(src + (i + 1) * lds);
            r[i] = Avx512F.UnpackLow(a, b);
            r[i + 1] = Avx512F.UnpackHigh(a, b);
        }
        var u = stackalloc Vector512<float>[Lanes];
        for (int g = 0; g < 4; g++)
        {
            Vector512<double> t0 = r[4 * g].AsDouble(), t1 = r[4 * g + 1].AsDouble();
            Vector512<double> t2 = r[4 * g + 2].AsDouble(), t3 = r[4 * g + 3].AsDouble();
            u[4 * g] = Avx512F.UnpackLow(t0, t2).AsSingle();
            u[4 * g + 1] = Avx512F.UnpackHigh(t0, t2).AsSingle();
            u[4 * g + 2] = Avx512F.UnpackLow(t1, t3).AsSingle();
            u[4 * g + 3] = Avx512F.UnpackHigh(t1, t3).AsSingle();
        }
        for (int m = 0; m < 4; m++)
        {
            V v0 = Avx512F.Shuffle4x128(u[m], u[4 + m], 0x88), v1 = Avx512F.Shuffle4x128(u[m], u[4 + m], 0xDD);
            V w0 = Avx512F.Shuffle4x128(u[8 + m], u[12 + m], 0x88), w1 = Avx512F.Shuffle4x128(u[8 + m], u[12 + m], 0xDD);
            Avx512F.Shuffle4x128(v0, w0, 0x88).Store(dst + m * ldd);            // column m
            Avx512F.Shuffle4x128(v1, w1, 0x88).Store(dst + (4 + m) * ldd);      // column 4 + m
            Avx512F.Shuffle4x128(v0, w0, 0xDD).Store(dst + (8 + m) * ldd);      // column 8 + m
            Avx512F.Shuffle4x128(v1, w1, 0xDD).Store(dst + (12 + m) * ldd);     // column 12 + m
        }
    }

    /// <summary>Σ_j x_j y_j over n floats (n a multiple of 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* x, float* y, int n)
    {
        V acc = V.Zero;
        for (int j = 0; j < n; j += Lanes) acc = Vector512.FusedMultiplyAdd(Vector512.Load(x + j), Vector512.Load(y + j), acc);
        return Vector512.Sum(acc);
    }

    /// <summary>y = s·x (<paramref name="add"/>: y += s·x) over n floats (n a multiple of 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale(float* y, float s, float* x, int n, bool add = false)
    {
        var sv = Vector512.Create(s);
        for (int j = 0; j < n; j += Lanes)
            (add ? Vector512.FusedMultiplyAdd(sv, Vector512.Load(x + j), Vector512.Load(y + j)) : sv * Vector512.Load(x + j)).Store(y + j);
    }

    /// <summary>y = s·(x ⊙ z) (<paramref name="add"/>: y += s·(x ⊙ z)) over n floats (n a multiple of 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Hadamard(float* y, float* x, float* z, int n, float s = 1, bool add = false)
    {
        var sv = Vector512.Create(s);
        for (int j = 0; j < n; j += Lanes)
        {
            var product = Vector512.Load(x + j) * Vector512.Load(z + j) * sv;
            (add ? Vector512.Load(y + j) + product : product).Store(y + j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* c, V value, Into into)
    {
        if (into == Into.Add) value = Vector512.Load(c) + value;
        else if (into == Into.Subtract) value = Vector512.Load(c) - value;
        value.Store(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block4x64(float* c, int ldc, float* a, int rowStep, int colStep, float* b, int ldb, int from, int to, Into into)
    {
        V c00 = V.Zero, c01 = V.Zero, c02 = V.Zero, c03 = V.Zero, c10 = V.Zero, c11 = V.Zero, c12 = V.Zero, c13 = V.Zero;
        V c20 = V.Zero, c21 = V.Zero, c22 = V.Zero, c23 = V.Zero, c30 = V.Zero, c31 = V.Zero, c32 = V.Zero, c33 = V.Zero;
        float* a0 = a, a1 = a + rowStep, a2 = a1 + rowStep, a3 = a2 + rowStep;
        for (int p = from; p < to; p++)
        {
            float* bp = b + p * ldb;
            V b0 = Vector512.Load(bp), b1 = Vector512.Load(bp + Lanes);
            V b2 = Vector512.Load(bp + 2 * Lanes), b3 = Vector512.Load(bp + 3 * Lanes);
            int at = p * colStep;
            V x = Vector512.Create(a0[at]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(x, b2, c02); c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
            x = Vector512.Create(a1[at]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(x, b2, c12); c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
            x = Vector512.Create(a2[at]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(x, b2, c22); c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
            x = Vector512.Create(a3[at]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(x, b2, c32); c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
        }
        Put(c, c00, into); Put(c + Lanes, c01, into); Put(c + 2 * Lanes, c02, into); Put(c + 3 * Lanes, c03, into);
        c += ldc;
        Put(c, c10, into); Put(c + Lanes, c11, into); Put(c + 2 * Lanes, c12, into); Put(c + 3 * Lanes, c13, into);
        c += ldc;
        Put(c, c20, into); Put(c + Lanes, c21, into); Put(c + 2 * Lanes, c22, into); Put(c + 3 * Lanes, c23, into);
        c += ldc;
        Put(c, c30, into); Put(c + Lanes, c31, into); Put(c + 2 * Lanes, c32, into); Put(c + 3 * Lanes, c33, into);
    }

    /// <summary>4 rows, 16 columns: narrow results (head sizes of 16 to 48).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Block4x16(float* c, int ldc, float* a, int rowStep, int colStep, float* b, int ldb, int from, int to, Into into)
    {
        V c0 = V.Zero, c1 = V.Zero, c2 = V.Zero, c3 = V.Zero;
        float* a1 = a + rowStep, a2 = a1 + rowStep, a3 = a2 + rowStep;
        for (int p = from; p < to; p++)
        {
            V bp = Vector512.Load(b + p * ldb);
            int at = p * colStep;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[at]), bp, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[at]), bp, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[at]), bp, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[at]), bp, c3);
        }
        Put(c, c0, into);
        Put(c + ldc, c1, into);
        Put(c + 2 * ldc, c2, into);
        Put(c + 3 * ldc, c3, into);
    }

    /// <summary>One row, 16 columns: the edges the 4 × 64 block does not cover.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row16(float* c, float* a, int colStep, float* b, int ldb, int from, int to, Into into)
    {
        V acc = V.Zero;
        for (int p = from; p < to; p++)
            acc = Vector512.FusedMultiplyAdd(Vector512.Create(a[p * colStep]), Vector512.Load(b + p * ldb), acc);
        Put(c, acc, into);
    }
}
