using System.Runtime.InteropServices;
using Mnemo.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Tests.Runtime;

/// <summary>MKL's vendor check (docs/architecture.md#mkl-on-amd): the slot is found, patched where it should be, and
/// the products MKL then runs compute what fp64 does.</summary>
public class MklDispatchTests
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate int Answer();

    static string LibtorchCpu()
    {
        TorchRuntime.Initialise();
        return MklDispatch.MappedPath(MklDispatch.Library) ?? throw new InvalidOperationException("libtorch_cpu.so is not mapped");
    }

    [Fact]
    public void The_slot_of_mkls_vendor_check_is_found_where_the_loaded_library_puts_it()
    {
        string path = LibtorchCpu();
        var plt = ElfPltSlot.Find(path, MklDispatch.Symbol);
        Assert.True(plt.SlotOffset > 0 && plt.SymbolValue > 0, plt.ToString());
        // The function's address now, less its address in the file, is where the library was loaded: page-aligned,
        // which a wrong symbol would not be. The slot lies in the library's own mapping.
        nint loadBase = NativeLibrary.GetExport(NativeLibrary.Load(path), MklDispatch.Symbol) - (nint)plt.SymbolValue;
        Assert.Equal(0, loadBase % Environment.SystemPageSize);

        var missing = Assert.Throws<InvalidDataException>(() => ElfPltSlot.Find(path, "no_such_function_anywhere"));
        Assert.Contains("has no PLT slot for no_such_function_anywhere", missing.Message);
        using var dir = new Tmp.Dir();
        File.WriteAllBytes(dir["not-elf.so"], new byte[128]);
        Assert.Contains("is not a little-endian ELF64 file",
            Assert.Throws<InvalidDataException>(() => ElfPltSlot.Find(dir["not-elf.so"], MklDispatch.Symbol)).Message);
    }

    [Fact]
    public void On_a_cpu_that_is_not_intels_the_vendor_check_answers_yes_and_on_intels_it_is_left_alone()
    {
        LibtorchCpu();
        string vendor = CpuFeatures.Read().Vendor;
        bool optedOut = Environment.GetEnvironmentVariable(MklDispatch.OptOutVariable)?.Trim() == "keep";
        bool x64 = RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;
        if (vendor == "GenuineIntel" || optedOut || !x64)
        {
            Assert.False(MklDispatch.Bypassed, MklDispatch.Status);
            Assert.StartsWith("MKL as shipped", MklDispatch.Status);
            return;
        }
        Assert.True(MklDispatch.Bypassed, MklDispatch.Status);
        Assert.Equal(MklDispatch.Answer, Marshal.ReadIntPtr(MklDispatch.Slot));                    // the slot now points at it
        Assert.Equal(1, Marshal.GetDelegateForFunctionPointer<Answer>(MklDispatch.Answer)());      // and it answers yes
        Assert.Contains(vendor, MklDispatch.Status);
    }

    [Theory]
    [InlineData(257, 131, 515)]                          // odd sizes: every kernel's edge handling
    [InlineData(1024, 64, 192)]                          // a projection of 1,024 tokens
    [InlineData(64, 64, 64)]                             // a chunk's product
    public void Fp32_products_on_the_kernels_mkl_chose_equal_fp64s(int m, int k, int n)
    {
        LibtorchCpu();
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        var a = randn([3, m, k], generator: generator);
        var b = randn([3, k, n], generator: generator);
        var reference = a.to(float64).matmul(b.to(float64));
        foreach (var product in new[] { a.matmul(b), a.matmul(b.transpose(1, 2).contiguous().transpose(1, 2)), a[0].mm(b[0]).unsqueeze(0) })
        {
            var expected = product.shape[0] == 1 ? reference[0].unsqueeze(0) : reference;
            double relRms = (product.to(float64) - expected).square().mean().sqrt().item<double>()
                / expected.square().mean().sqrt().item<double>();
            // fp32 with fp32 accumulation over k terms: about sqrt(k) · 2⁻²⁴ relative; 1e-6 holds for k ≤ 515.
            Assert.True(relRms < 1e-6, $"relative RMS {relRms:E2} at {m}×{k}×{n}");
        }
    }
}
