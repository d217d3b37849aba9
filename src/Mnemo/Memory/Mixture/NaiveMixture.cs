using Mnemo.Memory.Matrix;
using static TorchSharp.torch;

namespace Mnemo.Memory.Mixture;

/// <summary>
/// The mixture of memories as the paper states it, one token at a time: for each batch row and token t, for each
/// routed memory m ∈ I_t, apply the rule's naive reference (<see cref="NaiveMatrixMemory"/>) to S^m alone and add
/// w_tm · q_t S^m_t to o_t. Memories not in I_t are not touched. Slow by design; for tests.
/// </summary>
public static class NaiveMixture
{
    public static MixtureResult Run(MatrixKernelKind kind, MixtureInputs x)
    {
        using var scope = NewDisposeScope();
        var dtype = Chunks.ComputeType(x.Q);
        long b = x.Q.shape[0], t = x.Q.shape[1], m = x.Memories, top = x.Indices.shape[2];
        long h = x.Q.shape[2], dk = x.Q.shape[3], dv = x.V.shape[4];
        var routes = x.Indices.cpu().data<long>().ToArray();                 // [B, T, k] row-major
        // S[row][memory] [1, H, Dk, Dv]
        var states = Enumerable.Range(0, (int)b).Select(row => Enumerable.Range(0, (int)m).Select(mem =>
            x.H0 is null ? zeros([1, h, dk, dv], dtype, x.Q.device) : x.H0.narrow(0, row, 1).select(1, mem).to(dtype)).ToArray()).ToArray();
        var rows = new Tensor[b];
        for (int row = 0; row < b; row++)
        {
            var outputs = new Tensor[t];
            for (int i = 0; i < t; i++)
            {
                Tensor Token(Tensor a) => a.narrow(0, row, 1).narrow(1, i, 1);   // [1, 1, ...]
                var o = zeros([1, 1, h, dv], dtype, x.Q.device);
                for (int j = 0; j < top; j++)
                {
                    int mem = (int)routes[(row * t + i) * top + j];
                    Tensor Memory(Tensor a) => Token(a).select(2, mem);          // [1, 1, H, ...]
                    var (om, s) = kind == MatrixKernelKind.Delta
                        ? NaiveMatrixMemory.Delta(Token(x.Q), Memory(x.K), Memory(x.V), x.G is null ? null : Memory(x.G), Memory(x.Beta!),
                            states[row][mem])
                        : NaiveMatrixMemory.GatedLinear(Token(x.Q), Memory(x.K), Memory(x.V), x.G is null ? null : Memory(x.G),
                            states[row][mem]);
                    states[row][mem] = s;
                    o = o + Token(x.Weights).select(2, j).to(dtype).unsqueeze(-1).unsqueeze(-1) * om.to(dtype);
                }
                outputs[i] = o;
            }
            rows[row] = cat(outputs, 1);
        }
        var final = stack(states.Select(r => cat(r, 0)).ToArray(), 0);      // [B, M, H, Dk, Dv]
        return MixtureOfMemories.Finish(kind, KernelForm.Naive, x, cat(rows, 0), final, 64);
    }
}
