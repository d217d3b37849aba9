using static TorchSharp.torch;

namespace Mnemo.Runtime;

/// <summary>
/// The gradients a custom autograd function's backward returns. libtorch takes its own reference to them after the
/// backward returns, so the managed handles must outlive the call — but left to the caller's dispose scope alone they
/// would keep every call's gradients (and whatever they view) alive until the whole backward ends. So they are also
/// freed at the next custom backward on this thread: by then the autograd engine has moved them into the next nodes'
/// inputs (it does so before it runs another node). The last call's few go with the caller's scope.
/// </summary>
static class BackwardResults
{
    [ThreadStatic] static List<Tensor>? _handed;

    /// <summary>Frees what earlier backward calls handed over; call first thing in a backward.</summary>
    public static void Release()
    {
        if (_handed is null) return;
        foreach (var t in _handed) t.Dispose();
        _handed.Clear();
    }

    /// <summary>Hands gradients (null: none), made in the backward's own dispose scope, to libtorch.</summary>
    public static List<Tensor> Hand(IEnumerable<Tensor?> gradients)
    {
        _handed ??= [];
        var result = new List<Tensor>();
        foreach (var g in gradients)
        {
            bool valid = g is not null && !g.IsInvalid;
            if (valid) _handed.Add(g!.MoveToOuterDisposeScope());
            result.Add(valid ? g! : null!);
        }
        return result;
    }
}
