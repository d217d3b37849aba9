using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>
/// Gradient checkpointing: y = f(x) runs without keeping its autograd graph, and the backward runs f again on the
/// saved inputs, with the graph, to backpropagate through it. Autograd then keeps only f's inputs and outputs instead
/// of every intermediate — the memory of one call's graph at a time, for one more forward of f. f must be
/// deterministic; null inputs are passed through to f as null. In no_grad mode, or when no input requires a
/// gradient, f simply runs. (TorchSharp's custom functions hold up here: exact gradients, chaining, nesting in
/// another backward, no leaked tensors; see RecomputeTests.)
/// </summary>
sealed class Recompute : autograd.SingleTensorFunction<Recompute>
{
    public override string Name => nameof(Recompute);

    public static Tensor[] Run(Func<Tensor?[], Tensor[]> f, params Tensor?[] inputs)
    {
        if (!is_grad_enabled() || !inputs.Any(t => t is not null && t.requires_grad)) return f(inputs);
        var present = inputs.OfType<Tensor>().ToArray();
        Tensor?[] Expand(Tensor[] given)                                      // the non-null inputs back in their places
        {
            int k = 0;
            return inputs.Select(t => t is null ? null : given[k++]).ToArray();
        }
        var shapes = new List<long[]>();
        // One flat output, so the backward always gets a gradient for all of it (zeros where a part went unused).
        var flat = apply([(Func<Tensor[], Tensor[]>)(given => f(Expand(given))), shapes, .. present]);
        var parts = flat.split([.. shapes.Select(s => s.Aggregate(1L, (a, b) => a * b))]);
        return [.. parts.Select((p, i) => p.view(shapes[i]))];
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (f, shapes) = ((Func<Tensor[], Tensor[]>)vars[0], (List<long[]>)vars[1]);
        var inputs = vars.Skip(2).Cast<Tensor>().ToArray();
        ctx.save_for_backward([.. inputs]);
        ctx.save_data("f", f);
        ctx.save_data("needs", inputs.Select(t => t.requires_grad).ToArray());
        using var scope = NewDisposeScope();                                 // f's intermediates die here (no graph)
        var outputs = f(inputs);
        shapes.AddRange(outputs.Select(o => o.shape));
        return cat(outputs.Select(o => o.flatten()).ToArray()).MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var f = (Func<Tensor[], Tensor[]>)ctx.get_data("f");
        var needs = (bool[])ctx.get_data("needs");
        BackwardResults.Release();
        using var scope = NewDisposeScope();
        using var enabled = enable_grad();
        var leaves = ctx.get_saved_variables().Select((t, i) => t.detach().requires_grad_(needs[i])).ToArray();
        var output = cat(f(leaves).Select(o => o.flatten()).ToArray());
        var wrt = leaves.Where(l => l.requires_grad).ToArray();
        var g = autograd.grad([output], wrt, [grad], allow_unused: true);
        // One entry per forward argument: none for f and the shapes, then the inputs' gradients.
        int k = 0;
        return BackwardResults.Hand([null, null, .. leaves.Select(leaf => leaf.requires_grad ? g[k++] : null)]);
    }
}
