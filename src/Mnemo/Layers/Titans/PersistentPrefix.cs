using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Mnemo.Layers;

/// <summary>
/// Titans' persistent memory P = [p_1 … p_Np] (parameter "persistent_memory" [Np, D], input-independent) as a
/// prefix of a sequence: x̃ = [P ‖ x]. A stream puts P in front of its first piece only, and every later position
/// moves up by Np, so running the parts over x̃ piece by piece equals running them over x̃ at once.
/// </summary>
public static class PersistentPrefix
{
    /// <summary>The parameter, or null for persistent_tokens = 0. Drawn N(0, init_std) like every matrix (the
    /// language model re-initialises it so anyway).</summary>
    public static Parameter? Create(ModelConfig c, TitansConfig titans) =>
        titans.PersistentTokens == 0 ? null : nn.Parameter(randn(titans.PersistentTokens, c.DModel) * c.InitStd);

    /// <summary>
    /// Runs <paramref name="body"/>(x̃ piece, its position in x̃) for the piece x [B, T, D] that starts at
    /// <paramref name="position"/> of x, and returns its outputs at x's tokens [B, T, D] (those at P are dropped).
    /// </summary>
    public static Tensor Run(Tensor? p, Tensor x, long position, Func<Tensor, long, Tensor> body)
    {
        if (p is null) return body(x, position);
        long np = p.shape[0], t = x.shape[1];
        if (position > 0) return body(x, position + np);
        var prefixed = cat([p.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1), x], 1);   // [B, Np + T, D]
        return body(prefixed, 0).narrow(1, np, t);
    }
}
