using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>down_proj(silu(gate_proj x) ⊙ up_proj x) — the MLP of Llama and fla's GatedMLP.</summary>
public sealed class SwiGLU : nn.Module<Tensor, Tensor>
{
    readonly Projection gate_proj, up_proj, down_proj;

    public SwiGLU(long dModel, long hidden) : base(nameof(SwiGLU))
    {
        gate_proj = new Projection(dModel, hidden, hasBias: false);
        up_proj = new Projection(dModel, hidden, hasBias: false);
        down_proj = new Projection(hidden, dModel, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x)).MoveToOuterDisposeScope();
    }
}
