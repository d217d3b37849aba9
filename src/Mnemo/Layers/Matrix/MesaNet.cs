using Mnemo.Memory.Matrix;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// MesaNet (von Oswald et al. 2025, arXiv 2506.05233; docs/mechanisms.md#mesanet) in the memory mixers' shell, as fla's
/// MesaNet layer parametrises it: q and k L2-normalised (no 1/√Dk: the output norm removes the read's scale), the decay
/// g = logsigmoid(a_proj x) and β = σ(b_proj x) per head (both with a bias), the regulariser λ = softplus(λ_params) + 0.25
/// per key channel (starting at 1), and <see cref="MesaMemory"/> read with model.matrix.cg_steps CG steps.
/// </summary>
public sealed class MesaNet : MemoryMixer
{
    const double LambdaFloor = 0.25;
    readonly Projection a_proj, b_proj;
    readonly Parameter lambda_params;
    readonly int _chunk, _steps;

    public MesaNet(ModelConfig c, MatrixMemoryConfig matrix) : base(nameof(MesaNet), c, outputGate: false)
    {
        (_chunk, _steps) = (matrix.ChunkSize, matrix.CgSteps);
        a_proj = new Projection(c.DModel, c.NumHeads, hasBias: true);
        if (matrix.MesaDecayBias is { } bias)
            using (no_grad())
                a_proj.Bias!.fill_(bias);
        b_proj = new Projection(c.DModel, c.NumHeads, hasBias: true);
        double start = Math.Log(Math.Exp(1 - LambdaFloor) - 1);                                 // softplus⁻¹(1 − 0.25): λ starts at 1
        lambda_params = nn.Parameter(full(c.NumHeads * c.KeyHeadDim, start));
        RegisterComponents();
    }

    protected override (Tensor Q, Tensor K) Features(Tensor q, Tensor k, long position) => (UnitNorm(q, 1.0), UnitNorm(k, 1.0));

    protected override Tensor Remember(Tensor q, Tensor k, Tensor v, Tensor x, LayerCache? cache)
    {
        var lambda = (nn.functional.softplus(lambda_params) + LambdaFloor).view(Heads, KeyDim);
        var state = cache?.Get("h") is { } h ? new MesaState(h, cache.Get("g")!) : null;
        var inputs = new MesaInputs(q, k, v, nn.functional.logsigmoid(a_proj.forward(x)), b_proj.forward(x).sigmoid(), lambda, state);
        // a decoded token solves against its explicit H (the step form); anything longer runs the chunk form
        var form = cache is not null && q.shape[1] == 1 ? KernelForm.Step : KernelForm.Chunk;
        var (o, final) = MesaMemory.Run(form, inputs, _steps, _chunk);
        if (cache is not null)
        {
            cache.Set("h", final.H);
            cache.Set("g", final.G);
        }
        return o;
    }
}
