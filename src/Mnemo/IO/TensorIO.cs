using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.IO;

/// <summary>Conversions between libtorch tensors and safetensors entries, and whole state dicts.</summary>
public static class TensorIO
{
    static readonly (ScalarType Torch, SafeTensorDType File)[] DTypes =
    [
        (ScalarType.Float64, SafeTensorDType.F64), (ScalarType.Float32, SafeTensorDType.F32),
        (ScalarType.Float16, SafeTensorDType.F16), (ScalarType.BFloat16, SafeTensorDType.BF16),
        (ScalarType.Int64, SafeTensorDType.I64), (ScalarType.Int32, SafeTensorDType.I32),
        (ScalarType.Int16, SafeTensorDType.I16), (ScalarType.Int8, SafeTensorDType.I8),
        (ScalarType.Byte, SafeTensorDType.U8), (ScalarType.Bool, SafeTensorDType.BOOL),
    ];

    public static SafeTensorDType ToFile(ScalarType t, string name)
    {
        foreach (var (torchType, file) in DTypes) if (torchType == t) return file;
        throw new MnemoException($"tensor \"{name}\": dtype {t} cannot be stored in safetensors by Mnemo");
    }

    public static ScalarType ToTorch(SafeTensorDType d, string name)
    {
        foreach (var (torchType, file) in DTypes) if (file == d) return torchType;
        throw new MnemoException($"tensor \"{name}\": safetensors dtype {d} has no libtorch equivalent in Mnemo");
    }

    /// <summary>Copies a tensor's bytes (on the CPU, contiguous, little-endian as libtorch stores them).</summary>
    public static SafeTensorEntry ToEntry(string name, Tensor t)
    {
        using var scope = NewDisposeScope();
        var cpu = t.detach().cpu().contiguous();
        return new SafeTensorEntry(name, ToFile(t.dtype, name), cpu.shape, cpu.bytes.ToArray());
    }

    public static Tensor ToTensor(SafeTensorEntry e)
    {
        var t = empty(e.Shape, ToTorch(e.DType, e.Name));
        if (e.Data.Length > 0) t.bytes = e.Data.ToArray();
        return t;
    }

    /// <summary>Writes a module's parameters and buffers (its state dict) atomically.</summary>
    public static void SaveStateDict(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensors.Write(path, module.state_dict().Select(kv => ToEntry(kv.Key, kv.Value)), metadata);

    /// <summary>
    /// Loads weights into a module in place. Every tensor of the module must be in the file with the same shape and
    /// dtype (those <paramref name="optional"/> names may be absent, and keep their values), and the file may hold
    /// nothing else; otherwise one error lists what is missing, extra or mismatched.
    /// </summary>
    public static void LoadStateDict(nn.Module module, string path, Func<string, bool>? optional = null)
    {
        var file = SafeTensors.Read(path);
        var expected = module.state_dict();
        var problems = new List<string>();
        foreach (var name in expected.Keys.Where(k => file.TryGet(k, out _) is false && optional?.Invoke(k) != true))
            problems.Add($"missing \"{name}\"");
        foreach (var e in file.Tensors.Where(e => !expected.ContainsKey(e.Name))) problems.Add($"unexpected \"{e.Name}\"");
        foreach (var (name, target) in expected)
        {
            if (!file.TryGet(name, out var e)) continue;
            if (!e!.Shape.SequenceEqual(target.shape))
                problems.Add($"\"{name}\" has shape [{string.Join(", ", e.Shape)}], the model needs [{string.Join(", ", target.shape)}]");
            else if (ToTorch(e.DType, name) != target.dtype)
                problems.Add($"\"{name}\" is {e.DType}, the model needs {ToFile(target.dtype, name)}");
        }
        if (problems.Count == 0)
        {
            // Weights a diverged run left behind load as garbage that still "works" (0% accuracy, exit 0): refuse them.
            using var scope = NewDisposeScope();
            foreach (var name in expected.Keys)
            {
                if (!file.TryGet(name, out var e)) continue;                            // optional and absent: kept as is
                bool floating = e!.DType is SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F32 or SafeTensorDType.F64;
                if (floating && !isfinite(ToTensor(e)).all().item<bool>()) problems.Add($"\"{name}\" holds NaN or infinite values");
            }
            if (problems.Count > 0)
                throw new MnemoException(
                    $"{path}: {string.Join("; ", problems.Take(8))}{(problems.Count > 8 ? $"; and {problems.Count - 8} more" : "")} " +
                    $"(weights of a diverged run?)");
        }
        if (problems.Count > 0)
            throw new MnemoException($"{path}: does not match the model: " +
                $"{string.Join("; ", problems.Take(8))}{(problems.Count > 8 ? $"; and {problems.Count - 8} more" : "")}");
        using var noGrad = no_grad();
        foreach (var (name, target) in expected)
        {
            if (!file.TryGet(name, out var e)) continue;
            using var source = ToTensor(e!);
            target.copy_(source);
        }
    }
}
