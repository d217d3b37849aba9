using System.Runtime.InteropServices;
using System.Text;

namespace Mnemo.Runtime;

/// <summary>
/// libtorch's fp32 BLAS is Intel MKL, linked into libtorch_cpu.so, and MKL chooses its kernels by CPU vendor before it
/// looks at the instructions: on a CPU that is not Intel's it runs its AVX2 kernels even where the CPU has AVX-512, and
/// MKL_ENABLE_INSTRUCTIONS cannot raise that. On a 2-core AMD EPYC with AVX-512 that held fp32 matmuls to 164–175
/// GFLOP/s, against 377–403 with MKL's AVX-512 kernels (docs/architecture.md#mkl-on-amd).
/// <para>
/// MKL asks one function, <c>mkl_serv_intel_cpu_true</c>, whether the CPU is Intel's, and libtorch_cpu.so calls it
/// through its procedure linkage table. On x86-64 Linux with a CPU that is not Intel's, <see cref="Apply"/> points that
/// call's slot in the library's global offset table at six bytes of code that answer yes (<c>mov eax, 1; ret</c>), so
/// MKL chooses by the instructions the CPU has, as it does on Intel's. This changes which kernels run, and so the
/// rounding of a product, not what is computed. It must run before MKL's first product, which fixes the choice for the
/// process. MNEMO_MKL_VENDOR_CHECK=keep leaves MKL as shipped; nothing that goes wrong here stops a run: the
/// products stay on the kernels MKL chose, and <see cref="Status"/> says why.
/// </para>
/// </summary>
static class MklDispatch
{
    public const string Symbol = "mkl_serv_intel_cpu_true";
    public const string OptOutVariable = "MNEMO_MKL_VENDOR_CHECK";
    public const string Library = "libtorch_cpu.so";

    /// <summary>Whether MKL's vendor check answers yes in this process because of <see cref="Apply"/>.</summary>
    public static bool Bypassed { get; private set; }

    /// <summary>One line for `mnemo info` and benchmark reports: what was done, or why not.</summary>
    public static string Status { get; private set; } = "not checked";

    /// <summary>The address of the code that answers yes, once written (else 0).</summary>
    public static nint Answer { get; private set; }

    /// <summary>The patched slot's address, once patched (else 0).</summary>
    public static nint Slot { get; private set; }

    static bool _done;

    /// <summary>Applies the bypass once per process where it applies; later calls do nothing.</summary>
    public static void Apply()
    {
        if (_done) return;
        _done = true;
        string vendor = CpuFeatures.Read().Vendor;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            Status = "MKL as shipped (the bypass is for x86-64 Linux)";
        else if (vendor == "GenuineIntel")
            Status = "MKL as shipped (an Intel CPU: MKL already chooses by instruction set)";
        else if (Environment.GetEnvironmentVariable(OptOutVariable) is { } v && v.Trim().Equals("keep", StringComparison.OrdinalIgnoreCase))
            Status = $"MKL as shipped ({OptOutVariable}=keep): its kernels for a CPU that is not Intel's";
        else
        {
            try { Patch(vendor); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException
                or DllNotFoundException or EntryPointNotFoundException or InvalidOperationException)
            {
                Status = $"MKL as shipped (the bypass failed: {e.Message})";
            }
        }
    }

    static void Patch(string vendor)
    {
        string path = MappedPath(Library) ?? throw new InvalidOperationException($"{Library} is not loaded");
        var plt = ElfPltSlot.Find(path, Symbol);
        // Where the library was loaded: the symbol's address now, less its address in the file.
        nint handle = NativeLibrary.Load(path);
        nint loadBase = NativeLibrary.GetExport(handle, Symbol) - (nint)plt.SymbolValue;
        if (loadBase % Environment.SystemPageSize != 0)
            throw new InvalidDataException($"{Library}'s {Symbol} is not where its file says (load base 0x{loadBase:x})");
        var slot = loadBase + (nint)plt.SlotOffset;
        // Never write where the library is not mapped: a wrong offset would crash the process instead of failing here.
        if (!Mappings(path).Any(m => slot >= m.Start && slot + IntPtr.Size <= m.End))
            throw new InvalidDataException($"{Library}'s slot for {Symbol} (0x{slot:x}) is outside the library's mappings");
        var answer = Native.Code([0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3]);               // mov eax, 1; ret
        bool readOnly = plt.InRelro;
        if (readOnly) Native.Protect(slot, Native.Read | Native.Write);
        Marshal.WriteIntPtr(slot, answer);
        if (readOnly) Native.Protect(slot, Native.Read);
        if (Marshal.ReadIntPtr(slot) != answer) throw new InvalidOperationException("the slot did not take the new address");
        (Answer, Slot, Bypassed) = (answer, slot, true);
        SettleVectorMath();
        Status = $"MKL's vendor check answered yes on this {vendor} CPU: it chooses kernels by instruction set " +
            "(docs/architecture.md#mkl-on-amd)";
    }

    /// <summary>
    /// Has MKL's vector math (VML, behind libtorch's exp, tanh, log … in fp32 and fp64) choose its kernels on this
    /// thread, with one call on a tensor too small to be split. Once MKL answers yes, a process whose first VML call was
    /// split across threads ran one thread's part on a less accurate kernel in about one case in ten: fp32 exp off by
    /// 1.5e-4, fp64 by 3e-9, in that call only (docs/architecture.md#mkl-on-amd). One call settles the choice for all
    /// of VML, so do both dtypes here, before anything else runs.
    /// </summary>
    static void SettleVectorMath()
    {
        foreach (var dtype in new[] { TorchSharp.torch.ScalarType.Float32, TorchSharp.torch.ScalarType.Float64 })
        {
            using var x = TorchSharp.torch.full(4, 0.5, dtype);
            using var y = x.exp();
        }
    }

    /// <summary>The address ranges this process maps from <paramref name="path"/> (/proc/self/maps).</summary>
    static IEnumerable<(nint Start, nint End)> Mappings(string path) =>
        MapLines().Where(f => f[5] == path).Select(f => f[0].Split('-'))
            .Select(r => ((nint)Convert.ToInt64(r[0], 16), (nint)Convert.ToInt64(r[1], 16)));

    /// <summary>The file behind this process's mapping of a library named <paramref name="name"/>, from /proc/self/maps.</summary>
    public static string? MappedPath(string name) => MappedPath(file => file == name);

    /// <summary>The path of the first mapped file whose name (without its folder) passes <paramref name="isLibrary"/>.</summary>
    public static string? MappedPath(Func<string, bool> isLibrary) =>
        MapLines().Select(f => f[5]).FirstOrDefault(file => isLibrary(Path.GetFileName(file)));

    /// <summary>/proc/self/maps, a line per mapping with a file: range, permissions, offset, device, inode, path.</summary>
    static IEnumerable<string[]> MapLines() =>
        File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 6).Select(f => f[..5].Append(f[5].Trim()).ToArray());

    /// <summary>The few libc calls the patch needs.</summary>
    static class Native
    {
        public const int Read = 1, Write = 2, Execute = 4;
        const int Private = 0x02, Anonymous = 0x20;

        [DllImport("libc.so.6", EntryPoint = "mmap", SetLastError = true)]
        static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

        [DllImport("libc.so.6", EntryPoint = "mprotect", SetLastError = true)]
        static extern int Mprotect(nint address, nuint length, int protection);

        /// <summary>A page of its own holding <paramref name="code"/>, readable and executable, never freed.</summary>
        public static nint Code(byte[] code)
        {
            nint page = Mmap(0, (nuint)Environment.SystemPageSize, Read | Write, Private | Anonymous, -1, 0);
            if (page == -1) throw new InvalidOperationException($"mmap failed (errno {Marshal.GetLastPInvokeError()})");
            Marshal.Copy(code, 0, page, code.Length);
            Protect(page, Read | Execute);
            return page;
        }

        /// <summary>Sets the protection of the page holding <paramref name="address"/>.</summary>
        public static void Protect(nint address, int protection)
        {
            nint page = address & ~(nint)(Environment.SystemPageSize - 1);
            if (Mprotect(page, (nuint)Environment.SystemPageSize, protection) != 0)
                throw new InvalidOperationException($"mprotect failed (errno {Marshal.GetLastPInvokeError()})");
        }
    }
}

/// <summary>
/// Where an ELF64 shared library's calls to one of its own exported functions go: the procedure-linkage-table
/// relocation (R_X86_64_JUMP_SLOT) whose symbol has that name. SlotOffset is the slot's address relative to the load
/// base, SymbolValue the function's; InRelro whether the slot lies in the part the loader makes read-only.
/// </summary>
sealed record ElfPltSlot(ulong SlotOffset, ulong SymbolValue, bool InRelro)
{
    const uint SectionRela = 4, JumpSlot = 7, SegmentRelro = 0x6474e552;

    public static ElfPltSlot Find(string path, string symbol)
    {
        using var file = File.OpenRead(path);
        var header = ReadAt(file, 0, 64);
        if (header[0] != 0x7F || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F'
            || header[4] != 2 || header[5] != 1)
            throw new InvalidDataException($"{path} is not a little-endian ELF64 file");
        ulong sectionsAt = U64(header, 0x28), segmentsAt = U64(header, 0x20);
        int sectionSize = U16(header, 0x3A), sections = U16(header, 0x3C), segmentSize = U16(header, 0x36), segments = U16(header, 0x38);
        var table = ReadAt(file, (long)sectionsAt, sectionSize * sections);
        var found = new Dictionary<int, (byte[] Symbols, uint? Index)>();           // per symbol table: the symbol's index
        // The relocation sections that name a symbol table: for a library's PLT, .rela.plt against .dynsym.
        for (int s = 0; s < sections; s++)
        {
            int at = s * sectionSize;
            if (U32(table, at + 4) != SectionRela) continue;
            int symbolsAt = (int)U32(table, at + 0x28) * sectionSize;
            if (!found.TryGetValue(symbolsAt, out var lookup))
            {
                var symbols = Section(file, table, symbolsAt);
                var names = Section(file, table, (int)U32(table, symbolsAt + 0x28) * sectionSize);
                found[symbolsAt] = lookup = (symbols, SymbolIndex(symbols, names, symbol));
            }
            if (lookup.Index is not { } index) continue;
            var relocations = Section(file, table, at);
            for (int r = 0; r + 24 <= relocations.Length; r += 24)
            {
                ulong info = U64(relocations, r + 8);
                if ((info & 0xFFFFFFFF) != JumpSlot || info >> 32 != index) continue;
                ulong slot = U64(relocations, r);
                var program = ReadAt(file, (long)segmentsAt, segmentSize * segments);
                bool relro = Enumerable.Range(0, segments).Select(p => p * segmentSize)
                    .Any(p => U32(program, p) == SegmentRelro && slot >= U64(program, p + 0x10)
                        && slot < U64(program, p + 0x10) + U64(program, p + 0x28));
                return new ElfPltSlot(slot, U64(lookup.Symbols, (int)index * 24 + 8), relro);
            }
        }
        throw new InvalidDataException($"{path} has no PLT slot for {symbol}");
    }

    static uint? SymbolIndex(byte[] symbols, byte[] names, string symbol)
    {
        var wanted = Encoding.ASCII.GetBytes(symbol + "\0");
        for (int i = 0; (i + 1) * 24 <= symbols.Length; i++)
        {
            int name = (int)U32(symbols, i * 24);
            if (name > 0 && name + wanted.Length <= names.Length && names.AsSpan(name, wanted.Length).SequenceEqual(wanted))
                return (uint)i;
        }
        return null;
    }

    static byte[] Section(FileStream file, byte[] table, int at) => ReadAt(file, (long)U64(table, at + 0x18), (int)U64(table, at + 0x20));

    static byte[] ReadAt(FileStream file, long offset, int count)
    {
        var buffer = new byte[count];
        file.Position = offset;
        file.ReadExactly(buffer);
        return buffer;
    }

    static ushort U16(byte[] b, int at) => BitConverter.ToUInt16(b, at);
    static uint U32(byte[] b, int at) => BitConverter.ToUInt32(b, at);
    static ulong U64(byte[] b, int at) => BitConverter.ToUInt64(b, at);
}
